"""Latency predictor quality: predicted vs measured end-to-end latency of
random exported architectures of a search space, per runtime.

For each runtime the latency table of the config's space is built
(``cream_mm.evaluation.latency_build``, timed: the table-building time),
then ``--archs`` random paths (a seeded sampler, none of them a calibration
network) are exported as classifiers and timed end to end in the same
runtime. Reported per runtime and predictor (plain sum of the layers,
calibrated): the share of paths predicted within +-10 %, the mean absolute
error (ms) and the mean absolute relative error; plus a scatter plot PNG
(predicted vs measured, +-10 % band). Target: >= 90 % within +-10 % for the
calibrated inference form (``fused``) on one CPU thread. Measured figures:
``docs/benchmarks.md`` (``benchmarks/run_all.py``); run it on a quiet
machine.

    OMP_NUM_THREADS=1 python benchmarks/bench_latency_predictor.py \
        [--config configs/search/tiny_cream_embedded.py] [--archs 50] \
        [--runtimes eager fused onnxrt] [--threads 1] [--out DIR] \
        [--quick] [--json PATH]
"""
import argparse
import os
import os.path as osp
import time

from mmengine.config import Config

from figures import Figures, add_json_arg
import cream_mm  # noqa: F401
from cream_mm.arch import format_arch
from cream_mm.evaluation.latency_build import DEFAULT_CALIB, build_table
from cream_mm.evaluation.latency_measure import (RUNTIMES, check_runtime,
                                                 measure_network)
from cream_mm.search.cost import model_geometry
from cream_mm.search.flops_table import FlopsTable
from cream_mm.search.latency_table import LatencyTable
from cream_mm.search.sampler import PathSampler

HERE = osp.dirname(osp.abspath(__file__))
DEFAULT_CONFIG = osp.join(osp.dirname(HERE),
                          'configs/search/tiny_cream_embedded.py')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--config', default=DEFAULT_CONFIG,
                   help='search config whose space is measured')
    p.add_argument('--runtimes', nargs='+', choices=RUNTIMES,
                   default=list(RUNTIMES))
    p.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--archs', type=int, default=50,
                   help='random exported architectures per runtime')
    p.add_argument('--warmup', type=int, default=10)
    p.add_argument('--repeats', type=int, default=50)
    p.add_argument('--calib', type=int, default=DEFAULT_CALIB)
    p.add_argument('--depth', type=int, default=None,
                   help="override the space's max_depths (smaller: faster)")
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--out', default='work_dirs/bench_latency_predictor',
                   help='tables and scatter plot go here')
    p.add_argument('--quick', action='store_true',
                   help='3 archs, depth 1, few repeats: a smoke test whose '
                   'numbers mean nothing')
    add_json_arg(p)
    args = p.parse_args(argv)
    if args.quick:
        args.archs, args.warmup, args.repeats = 3, 1, 3
        args.calib, args.depth = 3, 1
    if args.calib < 1 or args.archs < 1:
        p.error('--calib and --archs: at least 1 (the calibrated predictor '
                'is one of the two compared)')
    return args


def distinct_archs(space, n: int, seed: int, exclude) -> list[str]:
    sampler = PathSampler(space, FlopsTable(space), seed=seed)
    out = []
    for _ in range(1000 * n):
        if len(out) >= n:
            break
        a = format_arch(sampler.sample())
        if a not in out and a not in exclude:
            out.append(a)
    return out


def scores(pred: list, meas: list) -> dict:
    rel = [abs(p - m) / m for p, m in zip(pred, meas)]
    return dict(within10=100. * sum(r <= 0.10 for r in rel) / len(rel),
                mae=sum(abs(p - m) for p, m in zip(pred, meas)) / len(rel),
                mape=100. * sum(rel) / len(rel))


def scatter(results: dict, path: str, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results),
                                                      4), dpi=100,
                             squeeze=False)
    for ax, (rt, r) in zip(axes[0], results.items()):
        lo = min(r['measured'] + r['sum'] + r['calibrated']) * 0.9
        hi = max(r['measured'] + r['sum'] + r['calibrated']) * 1.1
        ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1],
                        color='0.9', label='+-10 %')
        ax.plot([lo, hi], [lo, hi], c='0.5', lw=0.8)
        ax.scatter(r['measured'], r['sum'], s=10, c='tab:blue',
                   label='plain sum')
        ax.scatter(r['measured'], r['calibrated'], s=10, c='tab:red',
                   label='calibrated')
        ax.set_xlabel('measured (ms)')
        ax.set_ylabel('predicted (ms)')
        ax.set_title(f'{rt}: {r["within10_calibrated"]:.0f} % within 10 %')
        ax.legend(loc='upper left', fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.depth is not None:
        cfg.model.supernet.space.max_depths = args.depth
    space, num_classes, head_channels, in_ch = model_geometry(cfg.model)
    os.makedirs(args.out, exist_ok=True)
    fig, results = Figures(), {}
    for rt in args.runtimes:
        check_runtime(args.device, rt)
        path = osp.join(args.out, f'table_{args.device}_{rt}.json')
        if osp.exists(path):
            os.remove(path)  # the build time is a figure: build afresh
        t0 = time.perf_counter()
        data = build_table(space, num_classes, head_channels, path,
                           device=args.device, runtime=rt,
                           threads=args.threads, warmup=args.warmup,
                           repeats=args.repeats, calib=args.calib,
                           in_channels=in_ch, log=lambda s: None)
        build_s = time.perf_counter() - t0
        plain = LatencyTable(data, space, num_classes, head_channels, in_ch,
                             predictor='sum', current=data['conditions'])
        cal = LatencyTable(data, space, num_classes, head_channels, in_ch,
                           current=data['conditions'])
        calib = {n['arch'] for n in data['calib_networks']}
        archs = distinct_archs(space, args.archs, args.seed, calib)
        measured = [measure_network(data['space'], a, data['conditions'],
                                    args.warmup, args.repeats)
                    for a in archs]
        r = dict(measured=measured, sum=[plain.arch_cost(a) for a in archs],
                 calibrated=[cal.arch_cost(a) for a in archs])
        for kind in ('sum', 'calibrated'):
            for k, v in scores(r[kind], measured).items():
                r[f'{k}_{kind}'] = v
        results[rt] = r
        print(f'{rt}: {len(data["entries"])} entries + '
              f'{len(data["calib_networks"])} calibration networks built in '
              f'{build_s:.1f} s; {len(archs)} held-out archs, measured '
              f'{min(measured):.3f}-{max(measured):.3f} ms')
        for kind in ('sum', 'calibrated'):
            print(f'  {kind:10s}: {r[f"within10_{kind}"]:5.1f} % within '
                  f'+-10 %, MAE {r[f"mae_{kind}"]:.4f} ms, mean |error| '
                  f'{r[f"mape_{kind}"]:.1f} %')
            fig.add(f'{rt}_within10_{kind}', r[f'within10_{kind}'],
                    f'{rt}, {kind}: share within +-10 %', '%')
            fig.add(f'{rt}_mae_{kind}', r[f'mae_{kind}'],
                    f'{rt}, {kind}: mean absolute error', 'ms')
        fig.add(f'{rt}_build_s', build_s, f'{rt}: table-building time', 's')
        fig.info[rt] = dict(conditions=data['conditions'],
                            calibration={k: v for k, v in
                                         data['calibration'].items()
                                         if k != 'networks'},
                            archs=archs, measured_ms=measured,
                            sum_ms=r['sum'], calibrated_ms=r['calibrated'])
    png = osp.join(args.out, 'latency_predictor.png')
    scatter(results, png, f'{space.name}, max_depths {space.max_depths}, '
            f'{args.device}, {args.threads} thread(s), batch 1')
    print(f'scatter plot: {png}')
    fig.info.update(config=args.config, archs=args.archs, space=dict(
        name=space.name, max_depths=list(space.max_depths)), png=png)
    fig.dump(args.json)


if __name__ == '__main__':
    main()
