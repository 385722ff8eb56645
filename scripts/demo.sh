#!/usr/bin/env bash
# The main job on the embedded data, on CPU: set up .venv, build the data,
# train a Cream-S RetinaNet briefly on real tree-crown photos, evaluate COCO AP.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
WORK=${WORK_DIR:-work_dirs/demo}
CFG=configs/embedded/retinanet_cream-s_fpn_trees.py
export PYTHONWARNINGS="ignore::UserWarning:pkg_resources,ignore:pkg_resources is deprecated"
step() { printf '\n=== [demo %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

step "1/3 building the embedded datasets (data/embedded, first run only)"
$PY -m cream_mm.datasets

step "2/3 training RetinaNet + Cream-S on the tree-crown photos ($CFG)"
$PY tools/train.py "$CFG" --work-dir "$WORK/retinanet"

step "3/3 COCO evaluation of the trained detector on the val split"
CKPT=$(ls -t "$WORK"/retinanet/iter_*.pth | head -n 1)
$PY tools/test.py "$CFG" "$CKPT" --work-dir "$WORK/retinanet_test" \
  --out "$WORK/retinanet_test/predictions.pkl" | tee "$WORK/retinanet_test/test.log"

step "summary"
$PY - "$WORK" "$CKPT" <<'PYEOF'
import glob, json, os, sys
work, ckpt = sys.argv[1], sys.argv[2]
from cream_mm.models.complexity import arch_cost
cost = arch_cost('cream-287m', 224, with_head=False)
scalars = sorted(glob.glob(os.path.join(work, 'retinanet_test', '*', '*.json')))
metrics = json.load(open(scalars[-1])) if scalars else {}
print(f'backbone     Cream-S  k3e4|k5e6*2|k5e6,k3e6,k5e6|k5e6*4|k5e6*3 '
      f'({cost.flops / 1e6:.1f}M paper FLOPs @224, {cost.params / 1e6:.2f}M params)')
for k in ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l'):
    key = next((m for m in metrics if m.endswith(k)), None)
    if key:
        print(f'{k:<12} {metrics[key]:.3f}')
print(f'checkpoint   {ckpt}')
print(f'predictions  {work}/retinanet_test/predictions.pkl')
PYEOF
