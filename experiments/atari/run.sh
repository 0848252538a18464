#!/usr/bin/env bash
# Baseline (method none) and CAMAL PPO on Pong and Breakout, the four runs side by side on one GPU
# machine, each stopped after LIMIT seconds of training (SIGTERM: the run saves its model and is
# marked interrupted), then their learning curves (PNG) and evaluations, to read against the random agent's score
# (Pong -20.7, Breakout 1.7).
#   experiments/atari/run.sh [OUT_DIR]          (default: experiments/atari/runs)
#   LIMIT=480 N_ENVS=8 experiments/atari/run.sh
#   GAMES=Breakout N_ENVS=16 experiments/atari/run.sh   # one game: its two runs get the cores
# Needs camal-rl with the atari extra and OCAtari (README.md here); run from anywhere.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT_DIR=${1:-experiments/atari/runs}
PY=${PYTHON:-python3}
LIMIT=${LIMIT:-480}         # seconds of training per run; the four run at the same time
STEPS=${STEPS:-10000000}    # a cap far above what LIMIT allows: the time limit ends each run
N_ENVS=${N_ENVS:-8}
EVAL_FREQ=${EVAL_FREQ:-100000}
DEVICE=${DEVICE:-cuda}
GAMES=${GAMES:-Pong Breakout}
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR"

"$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')"
"$PY" -m camal_rl envs --check ALE/Pong-v5 || exit 1

for env in $GAMES; do
  for method in none camal; do
    run="$OUT_DIR/ALE-$env-v5/ppo-$method/seed0"
    timeout --signal=TERM --kill-after=60 "$LIMIT" "$PY" -m camal_rl train --preset "$(echo "$env" | tr A-Z a-z)-ppo" \
      --method "$method" --seed 0 --steps "$STEPS" --n-envs "$N_ENVS" --vec-env subproc --device "$DEVICE" \
      --eval-freq "$EVAL_FREQ" --eval-episodes 3 --checkpoint-freq 0 --no-progress-bar --out "$run" \
      >"$OUT_DIR/ALE-$env-v5-ppo-$method.log" 2>&1 &
  done
done
wait
tail -n 3 "$OUT_DIR"/*.log
"$PY" -m camal_rl plot "$OUT_DIR" --out "$OUT_DIR/plots"
for run in "$OUT_DIR"/ALE-*/ppo-*/seed0; do
  echo "== $run: $(cat "$run/status.json" | tr -d '\n ')"
  cat "$run/evaluations.csv" 2>/dev/null || echo "(no evaluations.csv: EVAL_FREQ=0, or stopped before the first)"
done | tee "$OUT_DIR/evaluations.txt"
