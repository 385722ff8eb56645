"""The paper's Tab. 1 at proxy scale: every row searched with several
seeds, ranked on the same stand-alone-trained paths, final architectures
retrained, with intervals (docs/study.md).

    OMP_NUM_THREADS=1 python tools/reproduce_table1.py \
        configs/study/table1_fmnist.py --cache /work/study_run/cache \
        --out /work/study_run/out

Stages (``--stages``, in this order): ``standalone`` (the N paths, each
twice), ``supernet`` (rows x seeds), ``inherited`` (the N paths with each
supernet's weights), ``retrain`` (each final architecture, retrain seeds),
``report`` (``study.json``, ``table1.md``, PNG plots). Every finished unit
is a file of the cache: a second invocation trains nothing it has, a
killed one continues with the missing units.
"""
import argparse
import sys
import time
from pathlib import Path

from mmengine.config import DictAction

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STAGES = ('standalone', 'supernet', 'inherited', 'retrain', 'report')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('study', help='study config (configs/study/*.py)')
    p.add_argument('--cache', required=True, help='unit cache directory '
                   '(shared by all rows; keep it across runs)')
    p.add_argument('--out', help='report directory (default: <cache>/..'
                   '/report)')
    p.add_argument('--stages', nargs='+', default=list(STAGES),
                   choices=STAGES)
    p.add_argument('--rows', nargs='+', default=None,
                   help="row ids (default: the study's `rows`; extra rows "
                   "such as '5s' by id)")
    p.add_argument('--workers', type=int, default=None,
                   help="worker processes (default: the study's)")
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override study config values')
    return p.parse_args(argv)


def _log(msg):
    print(time.strftime('%H:%M:%S'), msg, flush=True)


def _summary(kind, res):
    if kind == 'standalone':
        extra = ' '.join(f'{k[5:]} {v:.2f}' for k, v in res.items()
                         if k.startswith('top1_'))
        return f"{extra} ({res['train_seconds']:.0f} s)"
    if kind == 'supernet':
        return (f"final {res['final_arch']} {res['final_flops'] / 1e6:.2f}M "
                f"({res['seconds']:.0f} s{', resumed' if res['resumed'] else ''})")
    return (f"mean inherited {sum(res['top1']) / len(res['top1']):.2f} "
            f"({res['seconds']:.0f} s)")


def run_stage(name, units, args, options, workers, stats):
    from cream_mm.evaluation.study import run_units
    t0 = time.perf_counter()
    ran = 0
    results = {}
    for i, (unit, res, fresh) in enumerate(run_units(
            args.study, options, args.cache, units, workers)):
        results[unit] = res
        ran += fresh
        elapsed = time.perf_counter() - t0
        eta = elapsed / max(ran, 1) * (len(units) - i - 1) if ran else 0
        _log(f"[{name} {i + 1}/{len(units)}] {' '.join(map(str, unit[1:]))}"
             f": {_summary(unit[0], res)}"
             f"{'' if fresh else ' [cached]'}"
             f"{f'  eta {eta / 60:.0f} min' if fresh else ''}")
    stats[name] = dict(units=len(units), ran=ran,
                       seconds=time.perf_counter() - t0)
    return results


def main(argv=None):
    args = parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from cream_mm.evaluation.study import (all_rows, find_row, load_study,
                                           supernet_key)
    from cream_mm.evaluation.study_cache import UnitCache
    options = dict(args.cfg_options or {})
    study = load_study(args.study, options)
    workers = int(args.workers or study.get('workers', 1))
    rows = ([find_row(study, r) for r in args.rows] if args.rows
            else [dict(r) for r in study.rows])
    seeds = list(study.seeds)
    cache = UnitCache(args.cache)
    stats: dict = {}
    _log(f'study {args.study}: {len(study.paths)} paths, rows '
         f"{[r['id'] for r in rows]}, seeds {seeds}, supernet "
         f'{study.supernet_iters} iters, cache {args.cache}')
    if 'standalone' in args.stages:
        units = [('standalone', a, s) for s in study.standalone['seeds']
                 for a in study.paths]
        run_stage('standalone', units, args, options, workers, stats)
    sup_units = [('supernet', r['id'], s) for r in rows for s in seeds]
    if 'supernet' in args.stages:
        run_stage('supernet', sup_units, args, options, workers, stats)
    if 'inherited' in args.stages:
        units = [('inherited', r['id'], s) for r in rows for s in seeds
                 if cache.get('supernet', supernet_key(study, r, s))]
        run_stage('inherited', units, args, options, workers, stats)
    if 'retrain' in args.stages:
        finals = []
        for r in rows:
            for s in seeds:
                sup = cache.get('supernet', supernet_key(study, r, s))
                if sup and sup['final_arch'] not in finals:
                    finals.append(sup['final_arch'])
        units = [('standalone', a, s) for a in finals
                 for s in study.retrain['seeds']]
        run_stage('retrain', units, args, options, workers, stats)
    if 'report' in args.stages:
        from cream_mm.evaluation.study_report import write_report
        out = Path(args.out or Path(args.cache).resolve().parent / 'report')
        report = write_report(study, cache, rows, out, stats,
                              command=' '.join(sys.argv))
        _log(f"wrote {out / 'study.json'}, {out / 'table1.md'} and plots")
        print(report['markdown'])
        return report
    return dict(stages=stats, rows=[r['id'] for r in all_rows(study)])


if __name__ == '__main__':
    main()
