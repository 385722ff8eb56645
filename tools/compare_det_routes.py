"""Detection-searched vs classification-searched vs random architectures.

Each architecture (the detection search's ``searched.arch``, the
classification search's, and ``--random`` paths drawn by the detection
search's sampler in its backbone FLOPs band and kept only if they also lie
in the classification search's band, so every route shares one band) is
retrained on the embedded
classification data and trained as a RetinaNet on the embedded composite
set with the same schedule, for every seed of ``--seeds``; the detector's
COCO AP, AP50, APs/m/l on the val split are read from ``tools/test.py``'s
log and summarised as mean and standard deviation over seeds, with each
route's search cost (wall time of its search runs from their mmengine
logs: the classification route is the supernet search; the detection route
is that search plus the detection search).

    python tools/compare_det_routes.py \\
        --det-search work_dirs/det_search_chain/detsearch \\
        --cls-search work_dirs/det_search_chain/supernet \\
        --random 3 --seeds 0 1 2 --work-dir work_dirs/compare_routes

``--dry-run`` prints the commands without running them; ``--quick`` runs
2 iterations per stage (wiring only); ``--jobs N`` runs N (arch, seed)
trainings at once, each with ``OMP_NUM_THREADS`` = cores / N. A run whose
test log already holds its AP is not run again, so a killed comparison
continues where it stopped. Writes ``results.json`` and ``results.md``
into the work dir.
"""
import argparse
import concurrent.futures
import datetime
import functools
import json
import os
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
CLS_SEARCH_CFG = ROOT / 'configs/search/tiny_cream_embedded.py'


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
    p.add_argument('--jobs', type=int, default=1,
                   help='trainings run at once (default 1)')
    p.add_argument('--det-iters', type=int, default=300,
                   help="the detector's iterations (default 300, the "
                        "embedded configs' own); the cosine decay, the "
                        'evaluation and the checkpoint move to the new end')
    p.add_argument('--dry-run', action='store_true')
    p.add_argument('--quick', action='store_true')
    args = p.parse_args(argv)
    if args.random < 0:
        p.error('--random: at least 0')
    if args.det_iters < 31:
        p.error('--det-iters: at least 31 (the warm-up is 30 iterations)')
    if args.jobs < 1:
        p.error('--jobs: at least 1')
    return args


@functools.lru_cache(maxsize=None)
def _band(cfg_path: Path, with_head: bool):
    """(space, FlopsTable, flops_range) of a search config, counted as that
    search counts (the classification search with its head, the detection
    search without); built once per config."""
    from mmengine.config import Config

    from cream_mm.models.supernet import SearchSpace
    from cream_mm.search.flops_table import FlopsTable
    cfg = Config.fromfile(str(cfg_path)).model
    space = SearchSpace.build(dict(cfg.supernet.space))
    num_classes = cfg.get('head', {}).get('num_classes', 1000)
    table = FlopsTable(space, 'flops', num_classes, with_head=with_head)
    return space, table, tuple(cfg.flops_range)


def random_archs(n: int, seed: int = 0) -> list[str]:
    """``n`` paths drawn by the detection search's sampler in its FLOPs
    band (its config: space, input size, ``flops_range``) that also lie in
    the classification search's band."""
    from cream_mm.arch import format_arch
    from cream_mm.search.sampler import PathSampler
    space, table, band = _band(DET_SEARCH_CFG, False)
    _, cls_table, (lo, hi) = _band(CLS_SEARCH_CFG, True)
    sampler = PathSampler(space, table, band, seed=1000 + seed)
    out = []
    for _ in range(100000):
        arch = sampler.sample()
        if lo <= cls_table.arch_cost(arch) <= hi:
            out.append(format_arch(arch))
            if len(out) == n:
                return out
    raise SystemExit('no path lies in both FLOPs bands')


def mflops(arch: str) -> dict | None:
    """The arch's FLOPs (M, paper counting) as each search counts them:
    the detection search's backbone at its input size, and the
    classification search's network with its head at 32 px; and whether
    each lies in that search's band."""
    if arch.startswith('<'):
        return None
    out = {}
    for key, path, head in (('det', DET_SEARCH_CFG, False),
                            ('cls', CLS_SEARCH_CFG, True)):
        _, table, (lo, hi) = _band(path, head)
        cost = table.arch_cost(arch)
        out[f'{key}_mflops'] = cost / 1e6
        out[f'in_{key}_band'] = bool(lo <= cost <= hi)
    return out


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


def run(cmd, log: Path, dry: bool, threads: int | None = None) -> str:
    print(' '.join(map(str, cmd)) + f'  > {log}', flush=True)
    if dry:
        return ''
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
    with open(log, 'w') as f:
        subprocess.run(list(map(str, cmd)), cwd=ROOT, stdout=f, env=env,
                       stderr=subprocess.STDOUT, check=True)
    return log.read_text()


def read_ap(text: str) -> dict:
    """The COCO figures of a ``tools/test.py`` log."""
    return {k: float(m.group(1)) for k in KEYS for m in
            [re.search(rf'coco/{k}: (-?[0-9.]+)', text)] if m}


def train_and_test(arch: str, seed: int, out: Path, args) -> dict:
    """Retrain ``arch`` (classification), RetinaNet from it, test: AP."""
    py, dry = args.python, args.dry_run
    threads = max(1, len(os.sched_getaffinity(0)) // args.jobs)
    cls_text = (f"_base_ = ['{CLS_BASE}']\n"
                f"model = dict(backbone=dict(arch='{arch}'))\n"
                f'randomness = dict(seed={seed})\n')
    # a --quick run's AP is never taken for a real schedule's
    schedule_tag = 'quick' if args.quick else str(args.det_iters)
    done = out / 'test.log'
    same = (out / 'cls.py').is_file() and \
        (out / 'cls.py').read_text() == cls_text and \
        (out / 'schedule').is_file() and \
        (out / 'schedule').read_text() == schedule_tag
    if not dry and same and done.is_file() and \
            len(read_ap(done.read_text())) == len(KEYS):
        print(f'{out}: done before, kept', flush=True)
        return read_ap(done.read_text())
    quick = (['--cfg-options', 'train_cfg.max_iters=2',
              'train_cfg.val_interval=2',
              'default_hooks.checkpoint.interval=2'] if args.quick else [])
    out.mkdir(parents=True, exist_ok=True)
    (out / 'schedule').write_text(schedule_tag)
    cls_cfg = out / 'cls.py'
    cls_cfg.write_text(cls_text)
    run([py, 'tools/train.py', cls_cfg, '--work-dir', out / 'cls', *quick],
        out / 'cls.log', dry, threads)
    ckpts = sorted((out / 'cls').glob('iter_*.pth'), key=osp.getmtime)
    ckpt = ckpts[-1] if ckpts else out / 'cls' / 'iter_N.pth'
    det_cfg = out / 'retinanet.py'
    det_cfg.write_text(
        f"_base_ = ['{DET_BASE}']\n"
        f"model = dict(backbone=dict(arch='{arch}', init_cfg=dict(\n"
        f"    _delete_=True, type='Pretrained', prefix='backbone.',\n"
        f"    checkpoint='{ckpt.resolve()}')))\n"
        f'randomness = dict(seed={seed})\n')
    n = args.det_iters
    schedule = ['--cfg-options', f'train_cfg.max_iters={n}',
                f'train_cfg.val_interval={n}', f'param_scheduler.1.end={n}',
                f'default_hooks.checkpoint.interval={n}']
    run([py, 'tools/train.py', det_cfg, '--work-dir', out / 'det',
         *(quick or schedule)],
        out / 'det.log', dry, threads)
    dets = sorted((out / 'det').glob('iter_*.pth'), key=osp.getmtime)
    det = dets[-1] if dets else out / 'det' / 'iter_N.pth'
    text = run([py, 'tools/test.py', det_cfg, det, '--work-dir',
                out / 'test'], out / 'test.log', dry, threads)
    return read_ap(text)


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
    sup = search_cost(args.cls_search)
    det = search_cost(args.det_search)
    cost = {'classification-search': dict(total_s=sup, supernet_s=sup),
            'detection-search': dict(
                total_s=None if None in (sup, det) else sup + det,
                supernet_s=sup, detection_search_s=det)}
    # seed-major: every route's seed 0 before any route's seed 1
    jobs = [(name, arch, s) for s in args.seeds
            for name, arch in archs.items()]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {job: pool.submit(train_and_test, job[1], job[2],
                                    work / job[0] / f'seed{job[2]}', args)
                   for job in jobs}
        rows = {job: f.result() for job, f in futures.items()}
    results = {}
    for name, arch in archs.items():
        runs = [rows[(name, arch, s)] for s in args.seeds]
        results[name] = dict(arch=arch, flops=mflops(arch),
                             det_iters=args.det_iters,
                             seeds=args.seeds, runs=runs,
                             summary=summarise(runs),
                             search_cost=cost.get(name))
    if args.dry_run:
        return results
    work.mkdir(parents=True, exist_ok=True)
    (work / 'results.json').write_text(json.dumps(results, indent=1))
    lines = ['| route | arch | backbone MFLOPs (160 px) | MFLOPs (32 px, '
             'head) | ' + ' | '.join(KEYS) + ' | search s |',
             '|' + '---|' * (len(KEYS) + 5)]
    for name, r in results.items():
        cells = [f"{r['summary'][k]['mean']:.3f} ± {r['summary'][k]['std']:.3f}"
                 if k in r['summary'] else '-' for k in KEYS]
        f = r['flops'] or {}

        def fl(key):
            if f'{key}_mflops' not in f:
                return '-'
            return (f"{f[f'{key}_mflops']:.1f}" +
                    ('' if f[f'in_{key}_band'] else ' (out of band)'))
        total = (r['search_cost'] or {}).get('total_s')
        lines.append(f"| {name} | `{r['arch']}` | {fl('det')} | {fl('cls')} "
                     '| ' + ' | '.join(cells) +
                     f" | {'-' if total is None else f'{total:.0f}'} |")
    lines.append(f'\nRetinaNet {args.det_iters} iterations; seeds '
                 f"{' '.join(map(str, args.seeds))}; mean ± std over seeds.")
    (work / 'results.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return results


if __name__ == '__main__':
    main()
