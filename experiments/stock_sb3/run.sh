#!/usr/bin/env bash
# Stock SB3 PPO on DoorKey-5x5, seeds 0-2: train (the study's budget and hyperparameters, NatureCNN),
# then score with camal-rl evaluate at the study's evaluation settings. Resumable: skips what exists.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=experiments/stock_sb3
for seed in 0 1 2; do
  zip=$HERE/runs/ppo-stock-seed$seed.zip
  [ -f "$zip" ] || python $HERE/train_stock_ppo.py --seed "$seed" --out "$zip"
  metrics=$HERE/runs/ppo-stock-seed$seed.metrics.json
  [ -f "$metrics" ] || camal-rl evaluate "$zip" --env MiniGrid-DoorKey-5x5-v0 --episodes 20 \
    --distractors 1 --max-steps-scored 32 --device cpu --out "$metrics"
done
