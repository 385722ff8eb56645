"""CPU latency of Cream models against torchvision baselines (Table 4).

    python tools/latency.py --models cream-287m cream-14m \
        --refs efficientnet_b0 mobilenet_v3_small mobilenet_v3_large --runs 200

Batch 1, one CPU thread (``--threads``); each model in its steady state:
``--warmup`` untimed runs, then blocks of ``--block`` timed runs, the models
taking turns block by block until each has ``--runs``. Cream models are
timed eager and, with ``--fused``, in the inference forms (BN folded; folded
+ TorchScript freeze). Writes a markdown table (``--out``) and prints it.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from cream_mm.arch import parse_arch  # noqa: E402
from cream_mm.evaluation.latency import (build_cream_classifier,  # noqa: E402
                                         build_reference, measure, table)
import torch  # noqa: E402

from cream_mm.models.fuse import fuse_conv_bn, optimize_for_cpu  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--models', nargs='+', default=['cream-287m'],
                   help='Cream released names or arch strings (@R sets size)')
    p.add_argument('--refs', nargs='*', default=['efficientnet_b0',
                                                 'mobilenet_v3_small',
                                                 'mobilenet_v3_large'])
    p.add_argument('--ref-size', type=int, default=224)
    p.add_argument('--fused', action='store_true',
                   help='also time the inference forms: BN folded, and BN '
                   'folded + TorchScript trace/freeze')
    p.add_argument('--runs', type=int, default=100)
    p.add_argument('--warmup', type=int, default=10)
    p.add_argument('--block', type=int, default=20,
                   help='timed runs of one model in a row (after --warmup '
                   'untimed ones) before the next model takes its turn')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--baseline', default=None,
                   help='model the ratio column divides by (default: '
                   'efficientnet_b0 if timed, else the first model)')
    p.add_argument('--out', default='work_dirs/latency.md')
    args = p.parse_args(argv)
    for name in ('runs', 'threads', 'block', 'ref_size'):
        if getattr(args, name) < 1:
            p.error(f'argument --{name.replace("_", "-")}: '
                    f'{getattr(args, name)}; at least 1')
    if args.warmup < 0:
        p.error(f'argument --warmup: {args.warmup}; at least 0')
    if not args.models and not args.refs:
        p.error('give at least one of --models / --refs')
    for spec in args.models:
        try:
            parse_arch(spec)
        except ValueError as err:
            p.error(f'argument --models: {err}')
    return args


def main(argv=None):
    args = parse_args(argv)
    models, sizes = {}, {}
    for spec in args.models:
        arch = parse_arch(spec)
        name = spec if len(spec) < 24 else f'cream[{spec[:16]}...]'
        models[name] = build_cream_classifier(arch).eval()
        sizes[name] = arch.resolution or 224
        if args.fused:
            s = sizes[name]
            models[name + ' (BN folded)'] = fuse_conv_bn(models[name])
            models[name + ' (folded+frozen)'] = optimize_for_cpu(
                models[name], torch.randn(1, 3, s, s))
            sizes[name + ' (BN folded)'] = s
            sizes[name + ' (folded+frozen)'] = s
    for ref in args.refs:
        models[ref] = build_reference(ref).eval()
        sizes[ref] = args.ref_size
    timings = measure(models, sizes, args.runs, args.warmup, args.threads,
                      args.block)
    baseline = args.baseline
    if baseline is None:
        baseline = 'efficientnet_b0' if 'efficientnet_b0' in models else None
    elif baseline not in models:
        raise SystemExit(f'argument --baseline: {baseline!r} is not timed; '
                         f'choose from {", ".join(models)}')
    text = table(timings, baseline)
    print(text)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write(text + '\n')
    print(f'wrote {args.out}')
    return timings


if __name__ == '__main__':
    main()
