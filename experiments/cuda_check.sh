#!/usr/bin/env bash
# On a CUDA machine, with camal-rl installed: (1) the test suite with its agents on the GPU,
# (2) the agents benchmark on the GPU (CAMAL / stock SB3 training and inference ratios), (3) a study
# cell's speed: DoorKey-5x5 baseline, CAMAL and energy agents with the study's settings
# (presets doorkey-ppo, doorkey-dqn) trained side by side on the GPU for a fixed number of steps,
# then one of them evaluated there. Each step has its own time limit; logs go to OUT_DIR.
#   experiments/cuda_check.sh [OUT_DIR]        (default: cuda_check)
#   PPO_STEPS=50000 DQN_STEPS=30000 TEST_WORKERS=8 experiments/cuda_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-cuda_check}
PY=${PYTHON:-python3}
PPO_STEPS=${PPO_STEPS:-50000}
DQN_STEPS=${DQN_STEPS:-30000}
TEST_WORKERS=${TEST_WORKERS:-8}
mkdir -p "$OUT_DIR"
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1

"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())" || exit 1

echo "== 1. test suite on cuda ($TEST_WORKERS workers)"
xdist=()
[ "$TEST_WORKERS" -gt 1 ] && xdist=(-n "$TEST_WORKERS")
CAMAL_RL_TEST_DEVICE=cuda timeout "${TEST_TIMEOUT:-300}" "$PY" -m pytest -q -p no:cacheprovider "${xdist[@]}" \
  tests 2>&1 | tee "$OUT_DIR/pytest_cuda.log" | tail -n 60

echo "== 2. benchmark on cuda"
timeout "${BENCH_TIMEOUT:-150}" "$PY" experiments/bench_agents.py --device cuda --steps 4096 --repeats 3 2>&1 \
  | tee "$OUT_DIR/bench_agents_cuda.log"

echo "== 3. study cell speed on cuda: PPO $PPO_STEPS steps, DQN $DQN_STEPS steps, side by side"
runs="$OUT_DIR/runs"
rm -rf "$runs"
TIMEFORMAT=%R
for algo in ppo dqn; do
  steps=$PPO_STEPS
  [ "$algo" = dqn ] && steps=$DQN_STEPS
  for method in none camal energy; do
    (
      { time timeout "${CELL_TIMEOUT:-200}" "$PY" -m camal_rl train --preset "doorkey-$algo" --method "$method" \
          --steps "$steps" --eval-freq 0 --checkpoint-freq 0 --no-progress-bar --device cuda \
          --out "$runs/$algo-$method" > "$OUT_DIR/train-$algo-$method.log" 2>&1 ; } 2> "$OUT_DIR/seconds-$algo-$method"
    ) &
  done
done
wait
for algo in ppo dqn; do
  for method in none camal energy; do
    "$PY" -c '
import csv, json, sys
from pathlib import Path
run, seconds = Path(sys.argv[1]), float(sys.argv[2])
status = json.loads((run / "status.json").read_text())
steps, state = status.get("num_timesteps", 0), status.get("state")
rows = list(csv.DictReader((run / "progress.csv").open()))
fps = rows[-1].get("time/fps", "?") if rows else "?"
print(f"{sys.argv[3]}: {steps} steps in {seconds:.0f} s with start-up ({state}); SB3 time/fps {fps}")
' "$runs/$algo-$method" "$(cat "$OUT_DIR/seconds-$algo-$method")" "$algo $method"
  done
done | tee "$OUT_DIR/cell_speed.txt"
timeout "${EVAL_TIMEOUT:-120}" "$PY" -m camal_rl evaluate "$runs/dqn-camal" --episodes 2 --max-steps-scored 4 \
  --q-policy epsilon-greedy --device cuda 2>&1 | tee "$OUT_DIR/evaluate_cuda.log" | tail -n 30
