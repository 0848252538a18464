#!/usr/bin/env bash
# The study's ViZDoom cell as far as one GPU machine runs it in a session's 15 device minutes: preset
# study-vizdoom-gpu (ViZDoom basic, PPO; none, CAMAL and energy x seeds 0-3, 100k steps; 12 runs side
# by side on CUDA, then evaluated there with the study's settings) by `camal-rl compare` within
# DEADLINE seconds, then a baseline-v-CAMAL saliency still. The sweep goes to SWEEP; OUT_DIR gets the
# logs, GPU use every 15 s, the still and GIF, and the sweep as a tarball without its models and
# checkpoints (72 MB a model: they stay on that machine). Rerunning resumes the sweep.
#   experiments/camal_study/vizdoom_gpu.sh OUT_DIR [compare options ...]
#   DEADLINE=430 SWEEP=/tmp/vizdoom-ppo-gpu experiments/camal_study/vizdoom_gpu.sh out
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT_DIR=${1:?usage: vizdoom_gpu.sh OUT_DIR [compare options ...]}
shift
PY=${PYTHON:-python3}
SWEEP=${SWEEP:-/tmp/vizdoom-ppo-gpu}
DEADLINE=${DEADLINE:-430}
mkdir -p "$OUT_DIR"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1

"$PY" - <<'CHECK' 2>&1 | tee "$OUT_DIR/check.log" || exit 1
import os, time
import torch
import camal_rl.envs
print("torch", torch.__version__, "cuda", torch.cuda.is_available() and torch.cuda.get_device_name(), "cores", os.cpu_count())
assert torch.cuda.is_available() or os.environ.get("REQUIRE_CUDA") == "0", "no CUDA device"
env = camal_rl.envs.make_masked_env("VizdoomBasic-v1", resolution=(120, 160), frame_skip=4)
obs, _ = env.reset(seed=0)
start, steps = time.perf_counter(), 0
while steps < 500:
    obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
    steps += 1
    if terminated or truncated:
        env.reset()
print("vizdoom", obs["image"].shape, "mask pixels", int(obs["mask"].sum()), f"{steps / (time.perf_counter() - start):.0f} env steps/s")
CHECK

if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 15 > "$OUT_DIR/gpu_use.csv" &
  SMI=$!
fi
start=$(date +%s)
timeout -k 30 "$DEADLINE" "$PY" -m camal_rl compare --preset study-vizdoom-gpu --out "$SWEEP" "$@" 2>&1 \
  | tee -a "$OUT_DIR/compare.log"
echo "compare: exit ${PIPESTATUS[0]} after $(( $(date +%s) - start )) s" | tee -a "$OUT_DIR/compare.log"
[ -n "${SMI:-}" ] && kill "$SMI"

none=$(ls -d "$SWEEP"/*/ppo-none/seed0 2>/dev/null | head -n 1)
camal=$(ls -d "$SWEEP"/*/ppo-camal-v1/seed0 2>/dev/null | head -n 1)
if [ -n "$none" ] && [ -n "$camal" ]; then
  timeout "${STILL_TIMEOUT:-60}" "$PY" experiments/camal_study/saliency_still.py "$OUT_DIR/vizdoom_none_vs_camal.png" \
    "$none" "$camal" --device "${STILL_DEVICE:-cuda}" 2>&1 | tail -n 3
fi
tar -czf "$OUT_DIR/sweep.tgz" -C "$(dirname "$SWEEP")" --exclude='*.zip' --exclude=checkpoints "$(basename "$SWEEP")"
ls -la "$OUT_DIR"
