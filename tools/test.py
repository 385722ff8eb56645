"""Test (and evaluate) a cream_mm model (scope ``mmpretrain`` or ``mmdet``).

Mirrors OpenMMLab's ``tools/test.py``; in addition it imports cream_mm,
refuses missing, corrupt or unsafe checkpoints up front, refuses a
checkpoint that does not fill the model exactly (``--non-strict`` lists
the differences and evaluates anyway; docs/checkpoints.md) and calls
:func:`cream_mm.engine.prepare_runner_cfg` (CPU distributed testing).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out X.pkl]
        [--show] [--show-dir DIR] [--non-strict] [--cfg-options k=v ...]
        [--launcher ...]
    tools/dist_test.sh CONFIG CHECKPOINT GPUS [args]
"""
import argparse
import os
import os.path as osp
import sys

# this checkout's cream_mm first (as the other tools/ scripts)
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.evaluator import DumpResults  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import cream_mm  # noqa: E402,F401  (registers models, hooks, wrappers)
from cream_mm.engine import (  # noqa: E402
    CorruptCheckpointError, UnsafeCheckpointError, check_checkpoint,
    finish_dist, prepare_runner_cfg)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a cream_mm model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir',
                        help='the dir to save evaluation metrics and logs')
    parser.add_argument('--out', help='dump predictions to this .pkl file')
    parser.add_argument('--show', action='store_true',
                        help='show prediction results in a window')
    parser.add_argument('--show-dir',
                        help='save painted predictions under this dir '
                        '(inside work_dir/timestamp)')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='display time of each shown image (s)')
    parser.add_argument(
        '--non-strict', action='store_true',
        help='evaluate even if the checkpoint does not fill the model '
        'exactly (missing/unused keys, shape mismatches are listed as a '
        'warning); same as --cfg-options load_strict=False')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value pairs')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not osp.isfile(args.config):
        parser.error(f"argument config: file '{args.config}' does not exist")
    try:
        check_checkpoint(args.checkpoint, 'argument checkpoint')
    except (FileNotFoundError, CorruptCheckpointError,
            UnsafeCheckpointError) as err:
        parser.error(str(err))
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f"argument --out: '{args.out}' must end with .pkl or "
                     '.pickle')
    return parser, args


def enable_visualization(cfg, args, parser):
    """``--show``/``--show-dir``: switch on the config's VisualizationHook."""
    if 'visualization' not in (cfg.get('default_hooks') or {}):
        parser.error('argument --show/--show-dir: the config has no '
                     'default_hooks.visualization (a VisualizationHook)')
    if cfg.get('default_scope') == 'mmdet':
        from mmdet.engine.hooks.utils import trigger_visualization_hook
        return trigger_visualization_hook(cfg, args)
    vis = cfg.default_hooks.visualization
    vis.update(enable=True, show=args.show, wait_time=args.wait_time,
               out_dir=args.show_dir)
    return cfg


def merge_args(cfg, args, parser):
    """Apply the command line to ``cfg`` (same priorities as OpenMMLab)."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.non_strict:
        cfg.load_strict = False
    if args.show or args.show_dir:
        cfg = enable_visualization(cfg, args, parser)
    return cfg


def dump_metric(cfg, out):
    """The results dumper of the config's scope."""
    if cfg.get('default_scope') == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        return DumpDetResults(out_file_path=out)
    return DumpResults(out_file_path=out)


def main(argv=None):
    parser, args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args, parser)
    prepare_runner_cfg(cfg, load_strict=True)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(dump_metric(cfg, args.out))
    metrics = runner.test()
    finish_dist()
    return metrics


if __name__ == '__main__':
    main()
