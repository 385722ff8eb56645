"""Latency targets of Table 4, as ratios measured side by side in one run.

    OMP_NUM_THREADS=1 python benchmarks/latency_ratios.py [--runs 400] \
        [--block 20] [--json PATH]

Targets: Cream-S <= 0.90x EfficientNet-B0 (224 px); Cream-14M at 64 px <=
0.55x MobileNetV3-small at 224 px -- eager vs eager and frozen vs frozen
(like for like), and our frozen form vs eager references; plus the speed-up
of the inference forms (BN folded; folded + TorchScript freeze) over eager.
Batch 1, one thread; every model timed in its steady state (warm-up, then a
block of runs of the same model; models take turns block by block -- see
``cream_mm.evaluation.latency.measure``). ``--block 1`` times single runs in
turn (cold caches). Measured figures: ``docs/benchmarks.md``
(``benchmarks/run_all.py``).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

from cream_mm.evaluation.latency import (build_cream_classifier,  # noqa: E402
                                         build_reference, measure, table)
from cream_mm.models.fuse import fuse_conv_bn, optimize_for_cpu  # noqa: E402
from figures import Figures, add_json_arg  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--runs', type=int, default=400)
    p.add_argument('--warmup', type=int, default=20)
    p.add_argument('--block', type=int, default=20)
    add_json_arg(p)
    args = p.parse_args()
    s, t = build_cream_classifier('cream-287m'), build_cream_classifier(
        'cream-14m')
    models = {
        'cream-s': s, 'cream-s folded': fuse_conv_bn(s),
        'cream-s frozen': optimize_for_cpu(s, torch.randn(1, 3, 224, 224)),
        'efficientnet_b0': build_reference('efficientnet_b0'),
        'cream-14m': t, 'cream-14m folded': fuse_conv_bn(t),
        'cream-14m frozen': optimize_for_cpu(t, torch.randn(1, 3, 64, 64)),
        'mobilenet_v3_small': build_reference('mobilenet_v3_small'),
    }
    # like-for-like: the references in the same traced + frozen form
    # (torch.jit.freeze also folds their BatchNorms)
    for ref in ('efficientnet_b0', 'mobilenet_v3_small'):
        with torch.inference_mode():
            models[ref + ' frozen'] = torch.jit.freeze(torch.jit.trace(
                models[ref].eval(), torch.randn(1, 3, 224, 224)))
    sizes = {n: 64 if n.startswith('cream-14m') else 224 for n in models}
    res = {x.name: x for x in measure(models, sizes, args.runs, args.warmup,
                                         block=args.block)}
    print(table(list(res.values()), 'efficientnet_b0'))

    def ratio(a, b, stat='mean'):
        return getattr(res[a], stat) / getattr(res[b], stat)
    print()
    fig = Figures()
    for a, b, target in [
            ('cream-s', 'efficientnet_b0', 0.90),
            ('cream-14m', 'mobilenet_v3_small', 0.55),
            ('cream-s frozen', 'efficientnet_b0 frozen', 0.90),
            ('cream-14m frozen', 'mobilenet_v3_small frozen', 0.55),
            ('cream-14m frozen', 'mobilenet_v3_small', 0.55)]:
        r, med = ratio(a, b), ratio(a, b, 'median')
        print(f'{a} / {b}: {r:.2f}x of means, {med:.2f}x of medians '
              f'(target <= {target}) {"OK" if r <= target else "MISSED"}')
        key = f'{a}_over_{b}'.replace(' ', '_')
        fig.add(key, r, f'{a} / {b} (means)', 'x')
        fig.add(key + '_median', med, f'{a} / {b} (medians)', 'x')
    for m in ('cream-s', 'cream-14m'):
        print(f'{m}: BN folded {ratio(m, m + " folded"):.2f}x faster, '
              f'folded+frozen {ratio(m, m + " frozen"):.2f}x faster than '
              'eager')
        fig.add(f'{m}_folded_speedup', ratio(m, m + ' folded'),
                f'{m}: eager / BN folded', 'x')
        fig.add(f'{m}_frozen_speedup', ratio(m, m + ' frozen'),
                f'{m}: eager / folded + frozen', 'x')
    for name, t in res.items():
        fig.add(f'{name}_ms'.replace(' ', '_'), t.mean,
                f'{name} at {sizes[name]} px, mean', 'ms')
    fig.info.update(runs=args.runs, warmup=args.warmup, block=args.block)
    fig.dump(args.json)


if __name__ == '__main__':
    main()
