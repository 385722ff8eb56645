#!/usr/bin/env bash
# The main job, on the embedded data, on CPU:
#   Cream search (board + meta matching) -> final selection -> export
#   -> retrain the chosen architecture (mmpretrain)
#   -> RetinaNet with that backbone, initialised from the retrained classifier (mmdet)
#   -> COCO-style AP on the embedded val split -> summary.
# Every stage is an ordinary tools/train.py / tools/test.py run on a config;
# stages hand over through files in $WORK_DIR (default work_dirs/demo).
# Each stage prints one line; its full output is in $WORK_DIR/<stage>.log.
# Usage: [WORK_DIR=dir] [SEARCH_CFG=config] bash scripts/demo.sh
set -euo pipefail
if [ $# -gt 0 ]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  case $1 in -h|--help) exit 0 ;; *) echo "unknown argument: $1" >&2; exit 2 ;; esac
fi
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/stage.sh
PY=.venv/bin/python
W=${WORK_DIR:-work_dirs/demo}
SEARCH_CFG=${SEARCH_CFG:-configs/search/tiny_cream_embedded.py}
export PYTHONWARNINGS="ignore::UserWarning:pkg_resources,ignore:pkg_resources is deprecated"
mkdir -p "$W"

run_stage "$W/data.log" "0/5 embedded datasets (data/embedded, first run only)" \
  $PY -m cream_mm.datasets

run_stage "$W/search.log" "1/5 Cream search ($SEARCH_CFG)" \
  $PY tools/train.py "$SEARCH_CFG" --work-dir "$W/search"
EXPORT="$W/search/search"
ARCH=$(cat "$EXPORT/searched.arch")
echo "[demo] selected architecture: $ARCH"

run_stage "$W/retrain.log" "2/5 retraining the selected architecture" \
  $PY tools/train.py "$EXPORT/searched_cls.py" --work-dir "$W/retrain"
CLS_CKPT=$(ls -t "$W"/retrain/iter_*.pth | head -n 1)
run_stage "$W/retrain_test.log" "2/5 testing the retrained classifier" \
  $PY tools/test.py "$EXPORT/searched_cls.py" "$CLS_CKPT" --work-dir "$W/retrain_test"

cat > "$W/retinanet_searched.py" <<PYEOF
# written by scripts/demo.sh: the exported RetinaNet config, backbone
# initialised (strictly) from the retrained classifier
_base_ = ['$(realpath "$EXPORT/searched_retinanet.py")']
model = dict(backbone=dict(init_cfg=dict(
    _delete_=True, type='Pretrained', prefix='backbone.',
    checkpoint='$(realpath "$CLS_CKPT")')))
PYEOF
run_stage "$W/retinanet.log" "3/5 RetinaNet with the searched backbone (from $CLS_CKPT)" \
  $PY tools/train.py "$W/retinanet_searched.py" --work-dir "$W/retinanet"
DET_CKPT=$(ls -t "$W"/retinanet/iter_*.pth | head -n 1)

run_stage "$W/retinanet_test.log" "4/5 COCO evaluation of the detector (val split)" \
  $PY tools/test.py "$W/retinanet_searched.py" "$DET_CKPT" --work-dir "$W/retinanet_test" \
  --out "$W/retinanet_test/predictions.pkl"

echo "[demo] 5/5 summary"
$PY tools/pipeline_summary.py "$W"
