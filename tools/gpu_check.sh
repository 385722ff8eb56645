#!/usr/bin/env bash
# The GPU check of docs/paper_scale.md: a few iterations of every paper
# search (with final selection and export), a retrain and a RetinaNet config,
# with and without --amp, on synthetic ImageNet / COCO-layout data; one
# PASS/FAIL line per run with images/s. Under 8 minutes on one GPU.
# Usage: tools/gpu_check.sh [--device cpu] [--only NAME ...] [--amp on|off]
#        [--iters N] [--out DIR] [--plan]    (see tools/gpu_check.py)
# Env: PYTHON (.venv/bin/python, else python), CUDA_VISIBLE_DEVICES (0: the check uses one GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
export PYTHONWARNINGS="ignore::UserWarning:pkg_resources,ignore:pkg_resources is deprecated"
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
case ${1:-} in -h|--help) usage; exit 0 ;; esac
# the project's environment (scripts/setup.sh) unless PYTHON says otherwise
if [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; fi
exec "${PYTHON:-python}" tools/gpu_check.py "$@"
