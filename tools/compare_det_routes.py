"""Detection-searched vs classification-searched vs random architectures.

Each architecture (the detection search's ``searched.arch``, the
classification search's, and ``--random`` paths drawn uniformly in the
backbone FLOPs band of the detection search) is retrained on the embedded
classification data and trained as a RetinaNet on the embedded composite
set with the same schedule, for every seed of ``--seeds``; the detector's
COCO AP, AP50, APs/m/l on the val split are read from ``tools/test.py``'s
log and summarised as mean and standard deviation over seeds, with each
route's search cost (wall time of its search run from the mmengine log).

    python tools/compare_det_routes.py \\
        --det-search work_dirs/det_search_chain/detsearch \\
        --cls-search work_dirs/det_search_chain/supernet \\
        --random 3 --seeds 0 1 2 --work-dir work_dirs/compare_routes

``--dry-run`` prints the commands without running them; ``--quick`` runs
2 iterations per stage (wiring only). Writes ``results.json`` and
``results.md`` into the work dir.
"""
import argparse
import datetime
import json
import os.path as osp
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEYS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l')
CLS_BASE = ROOT / 'configs/embedded/cream-14m_fmnist.py'
DET_BASE = ROOT / 'configs/embedded/retinanet_cream-s_fpn_composite.py'
DET_SEARCH_CFG = ROOT / 'configs/det_search/tiny_det_cream_composite.py'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--det-search', required=True,
                   help='work dir of the detection search')
    p.add_argument('--cls-search', required=True,
                   help='work dir of the classification search')
    p.add_argument('--random', type=int, default=3,
                   help='random architectures in the band (default 3)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--work-dir', default='work_dirs/compare_routes')
    p.add_argument('--python', default=sys.executable)
    p.add_argument('--dry-run', action='store_true')
    p.add_argument('--quick', action='store_true')
    args = p.parse_args(argv)
    if args.random < 0:
        p.error('--random: at least 0')
    return args


def random_archs(n: int, seed: int = 0) -> list[str]:
    """``n`` paths drawn by the detection search's sampler in its FLOPs
    band (its config: space, input size, ``flops_range``)."""
    from mmengine.config import Config

    from cream_mm.arch import format_arch
    from cream_mm.models.supernet import SearchSpace
    from cream_mm.search.flops_table import FlopsTable
    from cream_mm.search.sampler import PathSampler
    cfg = Config.fromfile(str(DET_SEARCH_CFG)).model
    space = SearchSpace.build(dict(cfg.supernet.space))
    table = FlopsTable(space, 'flops', with_head=False)
    sampler = PathSampler(space, table, tuple(cfg.flops_range),
                          seed=1000 + seed)
    return [format_arch(sampler.sample()) for _ in range(n)]


def backbone_mflops(arch: str) -> float | None:
    """Backbone FLOPs (M, paper counting) at the detection search's input
    size: the band every route must share."""
    from mmengine.config import Config

    from cream_mm.models.complexity import arch_cost
    if arch.startswith('<'):
        return None
    size = Config.fromfile(str(DET_SEARCH_CFG)).model.supernet.space[
        'input_size']
    return arch_cost(arch, size, with_head=False).flops / 1e6


def search_cost(work_dir: str) -> float | None:
    """Seconds between the first and last timestamped lines of the run's
    mmengine log (None if no log)."""
    logs = sorted(Path(work_dir).glob('*/*.log'))
    if not logs:
        return None
    stamps = re.findall(r'^(\d\d/\d\d \d\d:\d\d:\d\d)', logs[-1].read_text(),
                        re.M)
    if len(stamps) < 2:
        return None
    t = [datetime.datetime.strptime(s, '%m/%d %H:%M:%S') for s in
         (stamps[0], stamps[-1])]
    return (t[1] - t[0]).total_seconds()


def run(cmd, log: Path, dry: bool) -> str:
    print(' '.join(map(str, cmd)) + f'  > {log}')
    if dry:
        return ''
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, 'w') as f:
        subprocess.run(list(map(str, cmd)), cwd=ROOT, stdout=f,
                       stderr=subprocess.STDOUT, check=True)
    return log.read_text()


def train_and_test(arch: str, seed: int, out: Path, args) -> dict:
    """Retrain ``arch`` (classification), RetinaNet from it, test: AP."""
    py, dry = args.python, args.dry_run
    quick = (['--cfg-options', 'train_cfg.max_iters=2',
              'train_cfg.val_interval=2',
              'default_hooks.checkpoint.interval=2'] if args.quick else [])
    out.mkdir(parents=True, exist_ok=True)
    cls_cfg = out / 'cls.py'
    cls_cfg.write_text(f"_base_ = ['{CLS_BASE}']\n"
                       f"model = dict(backbone=dict(arch='{arch}'))\n"
                       f'randomness = dict(seed={seed})\n')
    run([py, 'tools/train.py', cls_cfg, '--work-dir', out / 'cls', *quick],
        out / 'cls.log', dry)
    ckpts = sorted((out / 'cls').glob('iter_*.pth'), key=osp.getmtime)
    ckpt = ckpts[-1] if ckpts else out / 'cls' / 'iter_N.pth'
    det_cfg = out / 'retinanet.py'
    det_cfg.write_text(
        f"_base_ = ['{DET_BASE}']\n"
        f"model = dict(backbone=dict(arch='{arch}', init_cfg=dict(\n"
        f"    _delete_=True, type='Pretrained', prefix='backbone.',\n"
        f"    checkpoint='{ckpt.resolve()}')))\n"
        f'randomness = dict(seed={seed})\n')
    run([py, 'tools/train.py', det_cfg, '--work-dir', out / 'det', *quick],
        out / 'det.log', dry)
    dets = sorted((out / 'det').glob('iter_*.pth'), key=osp.getmtime)
    det = dets[-1] if dets else out / 'det' / 'iter_N.pth'
    text = run([py, 'tools/test.py', det_cfg, det, '--work-dir',
                out / 'test'], out / 'test.log', dry)
    return {k: float(m.group(1)) for k in KEYS for m in
            [re.search(rf'coco/{k}: ([0-9.]+)', text)] if m}


def summarise(rows: list[dict]) -> dict:
    out = {}
    for k in KEYS:
        vals = [r[k] for r in rows if k in r]
        if vals:
            out[k] = dict(mean=statistics.fmean(vals),
                          std=statistics.stdev(vals) if len(vals) > 1
                          else 0., n=len(vals))
    return out


def main(argv=None):
    args = parse_args(argv)
    work = Path(args.work_dir)
    routes = {
        'detection-search': (Path(args.det_search) / 'search' /
                             'searched.arch'),
        'classification-search': (Path(args.cls_search) / 'search' /
                                  'searched.arch')}
    archs = {}
    for name, path in routes.items():
        if not path.is_file() and not args.dry_run:
            raise SystemExit(f'{name}: {path} not found (run that search)')
        archs[name] = path.read_text().strip() if path.is_file() else \
            f'<{path}>'
    for i, a in enumerate(random_archs(args.random)):
        archs[f'random-{i}'] = a
    cost = {'detection-search': search_cost(args.det_search),
            'classification-search': search_cost(args.cls_search)}
    results = {}
    for name, arch in archs.items():
        rows = [train_and_test(arch, s, work / name / f'seed{s}', args)
                for s in args.seeds]
        results[name] = dict(arch=arch, backbone_mflops=backbone_mflops(arch),
                             seeds=args.seeds, runs=rows,
                             summary=summarise(rows),
                             search_cost_s=cost.get(name))
    if args.dry_run:
        return results
    work.mkdir(parents=True, exist_ok=True)
    (work / 'results.json').write_text(json.dumps(results, indent=1))
    lines = ['| route | arch | backbone MFLOPs | ' + ' | '.join(KEYS) +
             ' | search s |', '|' + '---|' * (len(KEYS) + 4)]
    for name, r in results.items():
        cells = [f"{r['summary'][k]['mean']:.3f} ± {r['summary'][k]['std']:.3f}"
                 if k in r['summary'] else '-' for k in KEYS]
        lines.append(f"| {name} | `{r['arch']}` | "
                     f"{r['backbone_mflops']:.1f} | " + ' | '.join(cells) +
                     f" | {r['search_cost_s'] or '-'} |")
    (work / 'results.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return results


if __name__ == '__main__':
    main()
