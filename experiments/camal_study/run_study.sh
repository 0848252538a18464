#!/usr/bin/env bash
# The whole study, in order. Resumable: every sweep skips runs that are trained and evaluated and
# resumes unfinished ones, so running this again continues where it stopped.
#   experiments/camal_study/run_study.sh            # all steps
#   experiments/camal_study/run_study.sh study-lava-ppo   # one step
#   experiments/camal_study/run_study.sh study-lava-ppo -- --workers 1   # options for compare
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do STEPS+=("$1"); shift; done
[ $# -gt 0 ] && shift
EXTRA=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(study-sanity study-tune study-doorkey-ppo study-doorkey-dqn study-lava-ppo study-vizdoom-ppo)
mkdir -p experiments/camal_study/logs
for preset in "${STEPS[@]}"; do
  echo "== $preset $(date -u +%FT%TZ)" | tee -a "experiments/camal_study/logs/$preset.log"
  .venv/bin/camal-rl compare --preset "$preset" ${EXTRA[@]+"${EXTRA[@]}"} 2>&1 | tee -a "experiments/camal_study/logs/$preset.log"
done
