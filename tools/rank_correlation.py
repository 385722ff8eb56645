"""Kendall's tau of a trained supernet (SPOS, Cream, sandwich-rule / alpha-
divergence or K-shot search checkpoint: any search model of the protocol).

Samples N paths (seeded, inside a FLOPs range) with the search's sampler,
evaluates each with inherited supernet weights (BN recalibrated on a few
training batches), trains each from scratch briefly on the same data, and
writes ``ranking.json`` (every number) and ``ranking.png`` (scatter plot)
into the work dir:

    OMP_NUM_THREADS=1 python tools/rank_correlation.py \
        configs/search/tiny_cream_embedded.py work_dirs/tiny_cream/iter_600.pth \
        --num-paths 8 --train-iters 200 --work-dir work_dirs/rank_cream \
        --standalone-cache work_dirs/standalone_cache.json

Stand-alone results depend only on the paths and training settings, so a
second supernet of the same space (e.g. SPOS, or a sandwich-rule supernet
of ``configs/search/tiny_sandwich_embedded.py``) ranked with the same
``--seed``, range and ``--standalone-cache`` is evaluated on the same paths
and reuses them.
"""
import argparse
import os.path as osp

from mmengine.config import DictAction


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='search config (the checkpoint\'s)')
    p.add_argument('checkpoint', help='supernet checkpoint (iter_*.pth)')
    p.add_argument('--work-dir', help='output dir (default: '
                   'work_dirs/rank_<config name>)')
    p.add_argument('--num-paths', type=int, default=8)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--flops-min', type=float, default=None,
                   help='FLOPs range (paper counting; default: the '
                   "search's flops_range)")
    p.add_argument('--flops-max', type=float, default=None)
    p.add_argument('--train-iters', type=int, default=200,
                   help='stand-alone training iterations per path')
    p.add_argument('--lr', type=float, default=0.1)
    p.add_argument('--val-images', type=int, default=1024)
    p.add_argument('--val-split', default=None,
                   help="evaluation split (default: the search's held-out "
                   'search_val)')
    p.add_argument('--bn', default='recalibrate',
                   choices=['recalibrate', 'batch', 'running'],
                   help='BN statistics of inherited paths')
    p.add_argument('--calib-batches', type=int, default=10)
    p.add_argument('--standalone-cache', default=None,
                   help='JSON cache of stand-alone results (shared by '
                   'several supernets)')
    p.add_argument('--name', default='ranking')
    p.add_argument('--threads', type=int, default=None,
                   help='torch threads (default: torch\'s; use 1 on shared '
                   'machines)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    for name in ('config', 'checkpoint'):
        if not osp.isfile(getattr(args, name)):
            p.error(f"argument {name}: file '{getattr(args, name)}' does not "
                    'exist')
    for name, low in (('num_paths', 2), ('train_iters', 1),
                      ('val_images', 1), ('calib_batches', 1)):
        if getattr(args, name) < low:
            p.error(f'argument --{name.replace("_", "-")}: '
                    f'{getattr(args, name)}; at least {low}')
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    from cream_mm.evaluation.ranking import rank_correlation
    work_dir = args.work_dir or osp.join(
        'work_dirs', 'rank_' + osp.splitext(osp.basename(args.config))[0])
    flops_range = None
    if args.flops_min is not None or args.flops_max is not None:
        flops_range = (args.flops_min, args.flops_max)
    return rank_correlation(
        args.config, args.checkpoint, work_dir, num_paths=args.num_paths,
        seed=args.seed, flops_range=flops_range,
        train_iters=args.train_iters, lr=args.lr,
        val_images=args.val_images, val_split=args.val_split, bn=args.bn,
        calib_batches=args.calib_batches,
        standalone_cache=args.standalone_cache,
        cfg_options=args.cfg_options, name=args.name)


if __name__ == '__main__':
    main()
