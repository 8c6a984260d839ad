#!/usr/bin/env bash
# GPU check: mnistlab's workloads on CUDA against the CPU engine (benchmarks/gpu_check.py).
#
#   benchmarks/gpu_check.sh [--epochs 2] [--cnn-rows 10000] [--only a,b,cnn,stack]
#
# Runs from the repository root with its .venv (or $PYTHON); a checkout that is not installed
# gets src/ on PYTHONPATH. Exits 2 with one line when this machine has no CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
[[ -x "$python" ]] || python="$(command -v python3)"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
exec "$python" benchmarks/gpu_check.py "$@"
