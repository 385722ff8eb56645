"""Summary of a search -> retrain -> detect run (``scripts/demo.sh``).

    python tools/pipeline_summary.py work_dirs/demo

Reads only the files the stages wrote: the exported ``searched.json``, the
classifier's and the detector's test metrics (mmengine's per-run JSON).
"""
import glob
import json
import os.path as osp
import sys


def last_metrics(work_dir):
    files = sorted(glob.glob(osp.join(work_dir, '2*', '2*.json')))
    if not files:
        raise SystemExit(f'no metrics JSON under {work_dir!r}: did the test '
                         'stage run?')
    with open(files[-1]) as f:
        return json.load(f)


def main(work):
    with open(osp.join(work, 'search', 'search', 'searched.json')) as f:
        found = json.load(f)
    cls = last_metrics(osp.join(work, 'retrain_test'))
    det = last_metrics(osp.join(work, 'retinanet_test'))
    lines = [
        f"architecture  {found['arch']}",
        f"complexity    {found['flops'] / 1e6:.2f}M FLOPs (paper counting), "
        f"{found['macs'] / 1e6:.2f}M MACs, {found['params'] / 1e6:.3f}M "
        f"params at {found['resolution']} px",
        f"classifier    top-1 {cls.get('accuracy/top1', float('nan')):.2f}% "
        f"(retrained, embedded val split)",
        'detector      ' + '  '.join(
            f"{k.replace('mAP', 'AP')} {det['coco/bbox_' + k]:.3f}"
            for k in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
            if 'coco/bbox_' + k in det) + '  (COCO metric, embedded val)',
        'artefacts',
        f"  search      {osp.join(work, 'search', 'search')} (board.json, "
        'pareto.png, searched.arch / _cls.py / _retinanet.py / '
        '_inherited.pth)',
        f"  classifier  {osp.join(work, 'retrain')}",
        f"  detector config  {osp.join(work, 'retinanet_searched.py')}",
        f"  detector    {osp.join(work, 'retinanet')}, predictions in "
        f"{osp.join(work, 'retinanet_test', 'predictions.pkl')}",
    ]
    print('\n'.join(lines))
    return lines


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'work_dirs/demo')
