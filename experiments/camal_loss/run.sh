#!/usr/bin/env bash
# The runs of the camal-loss redesign (experiments/camal_loss/README.md), in order: each step is
# one `camal-rl compare --preset NAME` (resumable: rerun the same command to continue), logged to
# experiments/camal_loss/logs/NAME.log. Extra arguments after `--` go to every compare call.
#   experiments/camal_loss/run.sh                                  # every step
#   experiments/camal_loss/run.sh loss-tune-doorkey-ppo -- --workers 1
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=()
while [[ $# -gt 0 && "$1" != "--" ]]; do steps+=("$1"); shift; done
[[ "${1:-}" == "--" ]] && shift
if [[ ${#steps[@]} -eq 0 ]]; then
    steps=(loss-tune-doorkey-ppo loss-ablate-target-doorkey-ppo loss-ablate-balance-doorkey-ppo)
fi
camal_rl=${CAMAL_RL:-.venv/bin/camal-rl}
for step in "${steps[@]}"; do
    echo "== $step ($(date -u +%FT%TZ))" | tee -a "experiments/camal_loss/logs/$step.log"
    "$camal_rl" compare --preset "$step" --progress-every 600 "$@" 2>&1 | tee -a "experiments/camal_loss/logs/$step.log"
done
