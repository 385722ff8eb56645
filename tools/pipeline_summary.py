"""Summary of a search -> retrain -> detect run (``scripts/demo.sh``).

    python tools/pipeline_summary.py [WORK_DIR]     # default work_dirs/demo

Reads only the files the stages wrote: the exported ``searched.json``, the
classifier's and the detector's test metrics (mmengine's per-run JSON).
Every artefact listed is checked; a missing one is marked ``(missing)``.
"""
import argparse
import glob
import json
import os.path as osp
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('work_dir', nargs='?', default='work_dirs/demo',
                   help='the demo work directory (default: %(default)s)')
    args = p.parse_args(argv)
    if not osp.isdir(args.work_dir):
        p.error(f"argument work_dir: '{args.work_dir}' is not a directory")
    found = osp.join(args.work_dir, 'search', 'search', 'searched.json')
    if not osp.isfile(found):
        p.error(f"argument work_dir: no {found}; did the search stage "
                'finish?')
    return args


def last_metrics(work_dir):
    files = sorted(glob.glob(osp.join(work_dir, '2*', '2*.json')))
    if not files:
        raise SystemExit(f'no metrics JSON under {work_dir!r}: did the test '
                         'stage run?')
    with open(files[-1]) as f:
        return json.load(f)


def _at(path, what=''):
    """``path`` (+ ``what``), or ``path (missing)`` if it does not exist."""
    if not osp.exists(path):
        return f'{path} (missing)'
    return f'{path}{what}'


def _listing(folder, names):
    have = [n for n in names if osp.exists(osp.join(folder, n))]
    gone = [n for n in names if n not in have]
    text = ', '.join(have) if have else 'nothing'
    return f' ({text}' + (f'; missing: {", ".join(gone)})' if gone else ')')


def main(argv=None):
    work = parse_args(argv).work_dir
    search = osp.join(work, 'search', 'search')
    with open(osp.join(search, 'searched.json')) as f:
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
        f'  search      {search}' + _listing(search, [
            'board.json', 'pareto.png', 'searched.arch', 'searched_cls.py',
            'searched_retinanet.py', 'searched_inherited.pth']),
        f"  classifier  {_at(osp.join(work, 'retrain'))}",
        f"  detector config  {_at(osp.join(work, 'retinanet_searched.py'))}",
        f"  detector    {_at(osp.join(work, 'retinanet'))}, predictions in "
        f"{_at(osp.join(work, 'retinanet_test', 'predictions.pkl'))}",
    ]
    print('\n'.join(lines))
    return lines


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
