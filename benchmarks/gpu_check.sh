#!/usr/bin/env bash
# GPU check (issue 11 item 6): kernel equality on CUDA tensors and a timed training step of
# every backend, ≤ 5 minutes, results written under $OUT (default gpu-check/).
# Run from the repository root on a machine with CUDA:  bash benchmarks/gpu_check.sh
# Needs torch, numpy and numba only (run from the source tree: no install, no network).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-check}"
mkdir -p "$out"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
PYTHONPATH=src timeout 290 python benchmarks/gpu_check.py --out "$out" "$@" 2>&1 | tee "$out/gpu_check.log"
exit "${PIPESTATUS[0]}"
