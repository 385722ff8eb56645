"""Train a cream_mm model (configs of scope ``mmpretrain`` or ``mmdet``).

Mirrors OpenMMLab's ``tools/train.py``; in addition it imports cream_mm
(registers everything), refuses missing, corrupt or unsafe checkpoints
before anything is built, and calls :func:`cream_mm.engine.prepare_runner_cfg`
(safe checkpoints, CPU distributed training) before building the Runner.

A resume must fill the model exactly.  ``load_from`` (fine-tuning) may
leave keys unfilled -- typically another head -- and lists every missing,
unused and mis-shaped key as one warning; a checkpoint that fills no key at
all is refused.  ``--cfg-options load_strict=True`` makes ``load_from``
strict too (docs/checkpoints.md).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]
    tools/dist_train.sh CONFIG GPUS [args]
"""
import argparse
import os
import os.path as osp
import sys

# this checkout's cream_mm first (as the other tools/ scripts)
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner, find_latest_checkpoint  # noqa: E402

import cream_mm  # noqa: E402,F401  (registers models, hooks, wrappers)
from cream_mm.engine import (  # noqa: E402
    CorruptCheckpointError, UnsafeCheckpointError, check_checkpoint,
    finish_dist, prepare_runner_cfg)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a cream_mm model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint; without a value, from the '
        'latest checkpoint in the work directory')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='enable automatic learning rate scaling')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value pairs, e.g. '
        'train_cfg.max_epochs=2 or key="[a,b]" (no white space)')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not osp.isfile(args.config):
        parser.error(f"argument config: file '{args.config}' does not exist")
    if args.resume not in (None, 'auto') and not osp.isfile(args.resume) \
            and '://' not in args.resume:
        parser.error(
            f"argument --resume: checkpoint '{args.resume}' does not exist")
    return parser, args


def merge_args(cfg, args, parser):
    """Apply the command line to ``cfg`` (same priorities as OpenMMLab)."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # work_dir: CLI > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        if cfg.get('optim_wrapper') is None:
            parser.error('argument --amp: the config has no optim_wrapper')
        # without CUDA: the same wrapper on CPU (bfloat16, CPU GradScaler)
        cuda = torch.cuda.is_available()
        cfg.optim_wrapper.type = ('AmpOptimWrapper' if cuda
                                  else 'CPUAmpOptimWrapper')
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        if not cuda:
            cfg.optim_wrapper.setdefault('dtype', 'bfloat16')
    if args.auto_scale_lr:
        if 'base_batch_size' not in (cfg.get('auto_scale_lr') or {}):
            parser.error('argument --auto-scale-lr: the config has no '
                         'auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    # resume: explicit checkpoint > latest in work_dir
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def check_inputs(cfg, args, parser):
    """Refuse missing, corrupt or unsafe checkpoints before any work
    starts."""
    if args.resume == 'auto':
        path, field = find_latest_checkpoint(cfg.work_dir), '--resume'
    elif args.resume is not None:
        path, field = args.resume, '--resume'
    else:
        path, field = cfg.get('load_from'), 'load_from'
    if path:
        try:
            check_checkpoint(path, field)
        except (FileNotFoundError, CorruptCheckpointError,
                UnsafeCheckpointError) as err:
            parser.error(str(err))


def main(argv=None):
    parser, args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args, parser)
    check_inputs(cfg, args, parser)
    prepare_runner_cfg(cfg, load_strict=False)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.train()
    finish_dist()
    return runner


if __name__ == '__main__':
    main()
