#!/usr/bin/env bash
# GPU check for hubmgr: LoRA tokens/s, MFU against a measured bf16 matmul peak, peak GPU memory and a
# QLoRA run (where bitsandbytes is present), on random-init models built from configs. No network.
# Runs in under 5 minutes on one CUDA GPU. Run from the repository root:
#
#     bash benchmarks/gpu_check.sh            # writes ${OUT:-benchmarks/results}/gpu_check.json
#     bash benchmarks/gpu_check.sh --cpu      # tiny sizes on the CPU: checks that the script runs
#
# hubmgr need not be pip-installed: the repository and its built-in plugins go on PYTHONPATH and the
# check registers the built-in tasks itself. Wheels in .whl/ (datasets, dill, multiprocess,
# platformdirs, pluggy, tomli_w, xxhash ...) are installed offline into /tmp/site when present.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD:$PWD/plugins; fi
export PYTHONPATH="${PYTHONPATH:-$PWD:$PWD/plugins}"
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false PYTHONWARNINGS=ignore
PY=python3
if [ -x .venv/bin/python ] && [ "${1:-}" = "--cpu" ]; then PY=.venv/bin/python; fi
exec timeout 290 "$PY" benchmarks/gpu_check.py --out "${OUT:-benchmarks/results}" "$@"
