#!/usr/bin/env bash
# The GPU suite on a machine with PyTorch and no network: install the wheels gpu_wheels.sh downloaded into
# benchmarks/wheels (into a folder of their own, the machine's packages left as they are), put this checkout on
# the path (no install of oneword needed), then run benchmarks/gpu_suite.py with this script's arguments.
#
#   bash benchmarks/gpu_suite.sh                  # writes $OUT (or outputs/gpu-suite)/gpu_suite.{json,md}
#   bash benchmarks/gpu_suite.sh --smoke          # the CPU smoke check, the same way
#   DRY_RUN=1 bash benchmarks/gpu_suite.sh        # print the commands instead of running them
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
wheels=benchmarks/wheels
site=${SITE:-/tmp/oneword-gpu-site}
run() {
    if [[ -n ${DRY_RUN:-} ]]; then echo "+ $*"; else "$@"; fi
}

if [[ -s $wheels/requirements.txt ]]; then  # none there, or none needed: the machine's own packages
    have=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    want=$(cat "$wheels/PYTHON")
    if [[ $have != "$want" ]]; then
        echo "gpu_suite.sh: $wheels holds wheels for Python $want, this is $have: bash benchmarks/gpu_wheels.sh $have" >&2
        exit 2
    fi
    PIP_ROOT_USER_ACTION=ignore run "$python" -m pip install --quiet --upgrade --no-index --no-deps --no-compile \
        --no-cache-dir --disable-pip-version-check --target "$site" --find-links "$wheels" -r "$wheels/requirements.txt"
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
run "$python" benchmarks/gpu_suite.py --out "${OUT:-outputs/gpu-suite}" "$@"
