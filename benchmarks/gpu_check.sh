#!/usr/bin/env bash
# The GPU check, one command, sized to finish within 8 minutes on one GPU (benchmarks/gpu_check.py says what it
# runs). Writes benchmarks/results/gpu_check.json. Needs the project installed with a CUDA build
# of torch (`make TORCH= install` keeps the one you have).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
exec "$PY" benchmarks/gpu_check.py "$@"
