"""Learning curve of a search supernet: inherited (BN recalibrated) against
stand-alone top-1 of the same seeded paths, over supernet iterations.

Trains the supernet of a search config with its own ``train_step`` (Alg. 1
for Cream, plain single-path training for SPOS) for ``--iters`` iterations,
the supernet learning rate decayed linearly to 0 at ``--iters`` (the tiny
configs' ``LinearLR``); at each ``--eval-at`` iteration it evaluates
``--num-paths`` seeded in-range paths with inherited weights (BN statistics
recalibrated on ``--calib-batches`` training batches) on ``--val-images``
held-out images, and logs the running training-batch top-1 of the sampled
paths. The same paths trained stand-alone for ``--standalone-iters`` give
the reference (cached in ``--standalone-cache``, reusable across runs).
``--pin ARCH`` trains one path only (the sampler always returns it: the
"no weight sharing" control). Writes ``learning_curve.json`` and prints a
markdown table::

    OMP_NUM_THREADS=1 python tools/learning_curve.py \\
        configs/search/tiny_spos_embedded.py --iters 2000 \\
        --eval-at 250 500 1000 2000 --num-paths 8 --standalone-iters 300 \\
        --work-dir work_dirs/curve_spos \\
        --standalone-cache work_dirs/curve_standalone.json

Intermediate points of one run are taken before the learning rate has
decayed; ``--anneal-each`` trains a separate run per ``--eval-at`` point
with the rate decayed to 0 at that point (what a search of that length
gives; costs the sum of the points).
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import time
from pathlib import Path

from mmengine.config import DictAction


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='search config (tiny_spos_embedded.py, '
                   'tiny_cream_embedded.py, ...)')
    p.add_argument('--iters', type=int, default=2000)
    p.add_argument('--eval-at', type=int, nargs='+', default=None,
                   help='iterations at which paths are evaluated '
                   '(default: --iters)')
    p.add_argument('--anneal-each', action='store_true',
                   help='one run per --eval-at point, lr decayed to 0 there')
    p.add_argument('--num-paths', type=int, default=8)
    p.add_argument('--seed', type=int, default=0, help='path sample seed')
    p.add_argument('--train-seed', type=int, default=0,
                   help='seed of the supernet (init, sampler, data order)')
    p.add_argument('--standalone-iters', type=int, nargs='*', default=[300])
    p.add_argument('--standalone-paths', type=int, default=None,
                   help='train only the first N paths stand-alone '
                   '(default: all)')
    p.add_argument('--standalone-lr', type=float, default=0.1)
    p.add_argument('--val-images', type=int, default=1024)
    p.add_argument('--val-split', default=None,
                   help="default: the config's search_val split")
    p.add_argument('--calib-batches', type=int, default=10)
    p.add_argument('--pin', default=None,
                   help='train this arch string only (sampler pinned)')
    p.add_argument('--work-dir', default=None)
    p.add_argument('--standalone-cache', default=None)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


class _Pinned:
    """Replaces ``PathSampler.sample_code``: always the same path."""

    def __init__(self, model, text: str):
        arch = model.parse_arch(text)
        self.code, self.res = model.space.encode(arch)
        self.cost = float(model.sampler.cost(arch))

    def __call__(self):
        return tuple(self.code), self.res, self.cost


def _set_lr(optim_wrapper, base: dict, frac: float) -> None:
    """Supernet lr = base * (1 - frac) (``LinearLR`` 1 -> 0)."""
    ow = optim_wrapper['supernet']
    for group, lr in zip(ow.optimizer.param_groups, base['lr']):
        group['lr'] = lr * max(1. - frac, 0.)


def train_curve(cfg, iters: int, eval_at: list[int], paths, val, calib,
                train_seed: int, pin: str | None = None,
                log=print) -> list[dict]:
    """Train one supernet for ``iters`` iterations; rows of inherited top-1
    of ``paths`` at each ``eval_at`` iteration."""
    import torch
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner

    from cream_mm.evaluation.ranking import (_Cycle, inherited_accuracy,
                                             load_search_model)
    torch.manual_seed(train_seed)
    _, model = load_search_model(cfg)
    model.train()
    if pin:
        model.sampler.sample_code = _Pinned(model, pin)
    if getattr(model, 'score_cfg', {}).get('on') == 'val' or getattr(
            model, 'meta_net', None) is not None:
        model.attach_search_val(list(Runner.build_dataloader(
            cfg.search_val_dataloader, seed=train_seed)))
    ow = build_optim_wrapper(model, cfg.optim_wrapper)
    base = dict(lr=[g['lr'] for g in
                    ow['supernet'].optimizer.param_groups])
    train = _Cycle(Runner.build_dataloader(cfg.train_dataloader,
                                           seed=train_seed))
    rows, recent, t0 = [], [], time.perf_counter()
    for i in range(1, iters + 1):
        _set_lr(ow, base, (i - 1) / iters)
        out = model.train_step(train(), ow)
        recent = (recent + [float(out['top1'])])[-50:]
        if i in eval_at:
            model.eval()
            acc = [inherited_accuracy(model, a, val, calib) for a in paths]
            model.train()
            rho = model.last_step.get('rho')
            row = dict(iter=i, inherited=acc,
                       inherited_mean=sum(acc) / len(acc),
                       train_batch_top1_last50=sum(recent) / len(recent),
                       rho_last=rho, seconds=time.perf_counter() - t0)
            rows.append(row)
            log(f"iter {i}: inherited mean {row['inherited_mean']:.2f} % "
                f"(min {min(acc):.1f}, max {max(acc):.1f}); training-batch "
                f"top-1 (last 50) {row['train_batch_top1_last50']:.1f} %; "
                f"{row['seconds']:.0f} s")
    return rows


def main(argv=None):
    args = parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from mmengine.config import Config

    from cream_mm.evaluation.ranking import (_Cycle, _batch, build_loaders,
                                             kendall_tau, load_search_model,
                                             sample_paths, train_standalone)
    from cream_mm.arch import format_arch
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    work = Path(args.work_dir or osp.join(
        'work_dirs', 'curve_' + osp.splitext(osp.basename(args.config))[0]))
    work.mkdir(parents=True, exist_ok=True)
    eval_at = sorted(set(args.eval_at or [args.iters]))
    _, probe = load_search_model(cfg)
    paths = sample_paths(probe, args.num_paths, args.seed)
    if args.pin:
        paths = [probe.parse_arch(args.pin)]
    train_loader, val_loader = build_loaders(cfg, args.val_images,
                                             args.val_split, seed=args.seed)
    val = [_batch(probe, d) for d in val_loader]
    it = _Cycle(train_loader)
    calib = [_batch(probe, it(), True) for _ in range(args.calib_batches)]

    cache_path = Path(args.standalone_cache) if args.standalone_cache \
        else work / 'standalone.json'
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    standalone = {}
    for n in args.standalone_iters:
        accs = []
        for a in paths[:args.standalone_paths]:
            key = (f'{format_arch(a)}|iters={n}|lr={args.standalone_lr}|'
                   f'val={args.val_images}:{args.val_split}|seed=0')
            if key not in cache:
                cache[key] = train_standalone(
                    probe, a, _Cycle(train_loader), val, n,
                    lr=args.standalone_lr)['top1']
                cache_path.write_text(json.dumps(cache, indent=1))
            accs.append(cache[key])
        standalone[n] = accs
        if accs:
            print(f'stand-alone {n} iters: mean '
                  f'{sum(accs) / len(accs):.2f} %')

    runs = ([(t, [t]) for t in eval_at] if args.anneal_each
            else [(args.iters, eval_at)])
    rows = []
    for iters, points in runs:
        rows += train_curve(cfg, iters, points, paths, val, calib,
                            args.train_seed, args.pin)
    ref = standalone[max(standalone)] if standalone else None
    for r in rows:
        if ref is not None and len(ref) > 2:
            r['tau_vs_standalone'] = kendall_tau(r['inherited'][:len(ref)],
                                                 ref)[0]
    result = dict(config=args.config, args=vars(args),
                  paths=[format_arch(a) for a in paths],
                  standalone={str(k): v for k, v in standalone.items()},
                  curve=rows)
    (work / 'learning_curve.json').write_text(json.dumps(result, indent=1))
    print('\n| iter | inherited top-1 (mean, min-max) | training-batch top-1 '
          '| tau vs stand-alone |\n|---|---|---|---|')
    for r in rows:
        acc = r['inherited']
        tau = r.get('tau_vs_standalone')
        print(f"| {r['iter']} | {r['inherited_mean']:.1f} ({min(acc):.1f}-"
              f"{max(acc):.1f}) | {r['train_batch_top1_last50']:.1f} | "
              f"{'' if tau is None else f'{tau:.2f}'} |")
    for n, accs in standalone.items():
        print(f'| stand-alone {n} | {sum(accs) / len(accs):.1f} '
              f'({min(accs):.1f}-{max(accs):.1f}) | | |')
    return result


if __name__ == '__main__':
    main()
