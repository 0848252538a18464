#!/usr/bin/env bash
# The one command of a lent GPU machine (the device tool's `run`, carrying .whl/): installs the
# wheels made for it (README.md here, "Installing on the lent machine"), runs run.sh with LIMIT
# seconds of training, and packs what it wrote, models left out, into $OUT/atari.tar.gz.
#   LIMIT=420 experiments/atari/gpu_lease.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?set OUT to the folder that comes back}"
PY=${PYTHON:-python3}
if [ -d .whl ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "installing the carried wheels failed" >&2; exit 1; }
  # the wheel of camal-rl among them (its package_dir maps envs/ and agents/): python -m must not
  # put the checkout first on sys.path
  export PYTHONPATH=/tmp/site PYTHONSAFEPATH=1
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
echo "cores: $(nproc)"
RUNS=${RUNS:-/tmp/atari}
LIMIT=${LIMIT:-420} PYTHON="$PY" experiments/atari/run.sh "$RUNS" 2>&1 | tee "$OUT/run.txt"
status=${PIPESTATUS[0]}
tar czf "$OUT/atari.tar.gz" --exclude='*.zip' --exclude='*.pt' -C "$(dirname "$RUNS")" "$(basename "$RUNS")"
exit "$status"
