#!/usr/bin/env bash
# Training on a Slurm cluster, as OpenMMLab's tools/slurm_train.sh.
# Usage: tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
# Env: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK, SRUN_ARGS, PYTHON.
# CPUS_PER_TASK (one task per GPU) defaults to the config's largest loader
# num_workers + 1 for the training process: 9 for the ImageNet configs
# (8 workers), 5 for the COCO ones (4 workers). A smaller value is passed on
# with a warning: the workers then share cores and starve the GPU.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
case ${1:-} in -h|--help) usage; exit 0 ;; esac
if [ $# -lt 4 ]; then
  usage >&2
  echo "error: expected PARTITION JOB_NAME CONFIG WORK_DIR, got $# argument(s)" >&2
  exit 2
fi

set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
PY_ARGS=${@:5}

WORKERS=$(PYTHONPATH="$(dirname $0)/..":$PYTHONPATH $PYTHON -c '
import sys
from mmengine.config import Config
cfg = Config.fromfile(sys.argv[1])
print(max(int((cfg.get(k) or {}).get("num_workers", 0)) for k in (
    "train_dataloader", "val_dataloader", "test_dataloader",
    "search_val_dataloader")))' "$CONFIG" 2>/dev/null | tail -n 1)
case "$WORKERS" in
    ''|*[!0-9]*) echo "slurm_train.sh: could not read num_workers of" \
                      "$CONFIG; assuming 8" >&2
                 WORKERS=8 ;;
esac
CPUS_PER_TASK=${CPUS_PER_TASK:-$((WORKERS + 1))}
if [ "$CPUS_PER_TASK" -le "$WORKERS" ]; then
    echo "slurm_train.sh: warning: CPUS_PER_TASK=$CPUS_PER_TASK but" \
         "$CONFIG runs $WORKERS loader workers per GPU; give" \
         "$((WORKERS + 1)) or lower num_workers with --cfg-options" >&2
fi

PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
srun -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    --gres=gpu:${GPUS_PER_NODE} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    $PYTHON -u $(dirname "$0")/train.py ${CONFIG} --work-dir=${WORK_DIR} --launcher="slurm" ${PY_ARGS}
