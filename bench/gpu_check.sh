#!/usr/bin/env bash
# One-go GPU check of issue 16 (< 8 minutes on one GPU): GMC on PIPAL (CPU vs CUDA) and a random 2B-class
# LLaVA-style model in bfloat16 (largest batch, images/s batched vs one-by-one, reuse and prefix-cache savings).
# Writes one JSON file: $OUT/gpu_check.json where $OUT is set, else ./gpu_check.json, or --out FILE.
#   bench/gpu_check.sh            # on the GPU machine
#   bench/gpu_check.sh --tiny     # same code on the CPU at tiny sizes (< 2 minutes)
# PYTHON picks the interpreter (default: .venv/bin/python when present, else python3); PIPAL comes from
# GMC_SHARED_DATA or shared/data beside the project root.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
exec timeout 470 "$PY" bench/gpu_check.py "$@"
