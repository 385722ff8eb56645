#!/usr/bin/env bash
# Cream on the detection objective, embedded data, CPU (docs/detection_search.md):
#   1/5 classification supernet search (configs/search/tiny_cream_embedded.py)
#   2/5 detection search from that supernet on the composite set
#       (configs/det_search/tiny_det_cream_composite.py) -> board -> export
#   3/5 retrain the exported backbone (searched_cls.py)
#   4/5 RetinaNet with it (searched_retinanet.py, from the retrained weights)
#   5/5 COCO AP of the detector on the composite val split.
# Usage: [WORK_DIR=dir] [PY=python] [QUICK=1] bash scripts/det_search_chain.sh
# QUICK=1 runs a few iterations of every stage (checks the wiring only).
set -euo pipefail
if [ $# -gt 0 ]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  case $1 in -h|--help) exit 0 ;; *) echo "unknown argument: $1" >&2; exit 2 ;; esac
fi
cd "$(dirname "$0")/.."
. scripts/stage.sh
STAGE_TAG=det-chain
PY=${PY:-.venv/bin/python}
W=${WORK_DIR:-work_dirs/det_search_chain}
export PYTHONWARNINGS="ignore::UserWarning:pkg_resources,ignore:pkg_resources is deprecated"
mkdir -p "$W"
SUP=() DET=() RET=() RDET=()
if [ "${QUICK:-0}" = 1 ]; then
  SUP=(--cfg-options train_cfg.max_iters=4 model.warmup.iters=1
       model.meta.interval=2 default_hooks.checkpoint.interval=4
       search_val_dataloader.dataset.indices=64 final_dataloader.dataset.indices=64)
  DET=(train_cfg.max_iters=4 model.warmup.iters=1 model.meta.interval=2
       default_hooks.checkpoint.interval=4
       search_val_dataloader.dataset.indices=8 final_dataloader.dataset.indices=8)
  RET=(--cfg-options train_cfg.max_iters=2 train_cfg.val_interval=2
       default_hooks.checkpoint.interval=2)
  RDET=(--cfg-options train_cfg.max_iters=2 train_cfg.val_interval=2
        default_hooks.checkpoint.interval=2)
fi

run_stage "$W/data.log" "0/5 embedded datasets (first run only)" \
  $PY -m cream_mm.datasets
run_stage "$W/supernet.log" "1/5 classification supernet search" \
  $PY tools/train.py configs/search/tiny_cream_embedded.py \
  --work-dir "$W/supernet" "${SUP[@]}"
SUPERNET=$(ls -t "$W"/supernet/iter_*.pth | head -n 1)

run_stage "$W/detsearch.log" "2/5 detection search from $SUPERNET" \
  $PY tools/train.py configs/det_search/tiny_det_cream_composite.py \
  --work-dir "$W/detsearch" --cfg-options \
  "model.supernet.init_cfg.checkpoint=$(realpath "$SUPERNET")" "${DET[@]}"
EXPORT="$W/detsearch/search"
echo "[det-chain] selected architecture: $(cat "$EXPORT/searched.arch")"

run_stage "$W/retrain.log" "3/5 retraining the searched backbone" \
  $PY tools/train.py "$EXPORT/searched_cls.py" --work-dir "$W/retrain" \
  "${RET[@]}"
CLS_CKPT=$(ls -t "$W"/retrain/iter_*.pth | head -n 1)
cat > "$W/retinanet_searched.py" <<PYEOF
_base_ = ['$(realpath "$EXPORT/searched_retinanet.py")']
model = dict(backbone=dict(init_cfg=dict(
    _delete_=True, type='Pretrained', prefix='backbone.',
    checkpoint='$(realpath "$CLS_CKPT")')))
PYEOF
run_stage "$W/retinanet.log" "4/5 RetinaNet with the searched backbone" \
  $PY tools/train.py "$W/retinanet_searched.py" --work-dir "$W/retinanet" \
  "${RDET[@]}"
DET_CKPT=$(ls -t "$W"/retinanet/iter_*.pth | head -n 1)
run_stage "$W/retinanet_test.log" "5/5 COCO AP on the composite val split" \
  $PY tools/test.py "$W/retinanet_searched.py" "$DET_CKPT" \
  --work-dir "$W/retinanet_test"
grep -E "bbox_mAP" "$W/retinanet_test.log" | tail -n 1
