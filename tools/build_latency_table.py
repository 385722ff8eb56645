"""Build the latency table of a search config's space for one device and
runtime (docs/latency.md).

    python tools/build_latency_table.py configs/search/tiny_cream_embedded.py \
        --device cpu --runtime fused --threads 1 --out work_dirs/lat_cpu.json

Every unit a path can run (stem, each op at every width / stride / input
shape it meets, tail + head) is timed in its steady state (``--warmup``
untimed runs, median of ``--repeats``), then ``--calib`` whole networks
calibrate the predictor. One progress line per entry; the file is written
after each, so rerunning the same command after a kill continues with the
entries it lacks. A search selects the table with
``model.cost=dict(type='latency', table=FILE, range=(lo_ms, hi_ms))``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config, DictAction  # noqa: E402

import cream_mm  # noqa: E402,F401
from cream_mm.evaluation.latency_measure import (DEVICES, RUNTIMES,  # noqa
                                                 check_runtime)
from cream_mm.evaluation.latency_build import DEFAULT_CALIB  # noqa: E402
from cream_mm.search.cost import model_geometry  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Measure the per-layer latency table of a search '
        "config's space (resumable)")
    p.add_argument('config', help='search config (its model.supernet.space '
                   'and head define what is measured)')
    p.add_argument('--device', choices=DEVICES, default='cpu')
    p.add_argument('--runtime', choices=RUNTIMES, default='fused',
                   help='eager: PyTorch; fused: BN folded + TorchScript '
                   'freeze; onnxrt: ONNX Runtime')
    p.add_argument('--threads', type=int, default=1,
                   help='intra-op threads (CPU)')
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--warmup', type=int, default=10)
    p.add_argument('--repeats', type=int, default=50)
    p.add_argument('--calib', type=int, default=DEFAULT_CALIB,
                   help='whole networks timed to calibrate the predictor '
                   '(0: plain sum only)')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the calibration networks')
    p.add_argument('--out', required=True, help='table file (JSON)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    for name in ('threads', 'batch_size', 'repeats'):
        if getattr(args, name) < 1:
            p.error(f'argument --{name.replace("_", "-")}: '
                    f'{getattr(args, name)}; at least 1')
    for name in ('warmup', 'calib'):
        if getattr(args, name) < 0:
            p.error(f'argument --{name}: {getattr(args, name)}; at least 0')
    if not osp.isfile(args.config):
        p.error(f"argument config: file '{args.config}' does not exist")
    return args


def main(argv=None):
    args = parse_args(argv)
    from cream_mm.evaluation.latency_build import build_table
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        check_runtime(args.device, args.runtime)
    except (RuntimeError, ValueError) as err:
        sys.exit(f'error: {err}')
    space, num_classes, head_channels, in_ch = model_geometry(cfg.model)
    print(f'latency table of space {space.name!r} (max_depths '
          f'{space.max_depths}, resolutions '
          f'{space.resolutions or (space.input_size, )}) on {args.device} / '
          f'{args.runtime}, {args.threads} thread(s), batch '
          f'{args.batch_size} -> {args.out}', flush=True)
    build_table(space, num_classes, head_channels, args.out,
                device=args.device, runtime=args.runtime,
                threads=args.threads, batch_size=args.batch_size,
                warmup=args.warmup, repeats=args.repeats, calib=args.calib,
                seed=args.seed, in_channels=in_ch,
                log=lambda s: print(s, flush=True))


if __name__ == '__main__':
    main()
