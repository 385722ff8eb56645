#!/usr/bin/env bash
# The main job, on the embedded data, on CPU:
#   Cream search (board + meta matching) -> final selection -> export
#   -> retrain the chosen architecture (mmpretrain)
#   -> RetinaNet with that backbone, initialised from the retrained classifier (mmdet)
#   -> COCO-style AP on the embedded val split -> summary.
# Every stage is an ordinary tools/train.py / tools/test.py run on a config;
# stages hand over through files in $WORK_DIR (default work_dirs/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
W=${WORK_DIR:-work_dirs/demo}
SEARCH_CFG=${SEARCH_CFG:-configs/search/tiny_cream_embedded.py}
export PYTHONWARNINGS="ignore::UserWarning:pkg_resources,ignore:pkg_resources is deprecated"
step() { printf '\n=== [demo %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
mkdir -p "$W"

step "0/5 building the embedded datasets (data/embedded, first run only)"
$PY -m cream_mm.datasets

step "1/5 Cream search: supernet + prioritized board + meta matching ($SEARCH_CFG)"
$PY tools/train.py "$SEARCH_CFG" --work-dir "$W/search"
EXPORT="$W/search/search"
ARCH=$(cat "$EXPORT/searched.arch")
echo "selected architecture: $ARCH"

step "2/5 retraining the selected architecture from scratch ($EXPORT/searched_cls.py)"
$PY tools/train.py "$EXPORT/searched_cls.py" --work-dir "$W/retrain"
CLS_CKPT=$(ls -t "$W"/retrain/iter_*.pth | head -n 1)
$PY tools/test.py "$EXPORT/searched_cls.py" "$CLS_CKPT" --work-dir "$W/retrain_test"

step "3/5 RetinaNet with the searched backbone, initialised from $CLS_CKPT"
cat > "$W/retinanet_searched.py" <<PYEOF
# written by scripts/demo.sh: the exported RetinaNet config, backbone
# initialised (strictly) from the retrained classifier
_base_ = ['$(realpath "$EXPORT/searched_retinanet.py")']
model = dict(backbone=dict(init_cfg=dict(
    _delete_=True, type='Pretrained', prefix='backbone.',
    checkpoint='$(realpath "$CLS_CKPT")')))
PYEOF
$PY tools/train.py "$W/retinanet_searched.py" --work-dir "$W/retinanet"
DET_CKPT=$(ls -t "$W"/retinanet/iter_*.pth | head -n 1)

step "4/5 COCO evaluation of the detector on the val split"
$PY tools/test.py "$W/retinanet_searched.py" "$DET_CKPT" --work-dir "$W/retinanet_test" \
  --out "$W/retinanet_test/predictions.pkl"

step "5/5 summary"
$PY tools/pipeline_summary.py "$W"
