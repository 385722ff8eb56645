"""A few iterations of every paper config on synthetic data, one line each.

    python tools/gpu_check.py [--device cuda|cpu] [--out DIR] [--only NAME ..]
        [--amp {both,on,off}] [--iters N] [--timeout S] [--plan]
    bash tools/gpu_check.sh        # the same, on the first GPU

Generates an ImageNet-layout set (``DIR/data/imagenet/{train,val}/<class>/
*.JPEG`` + ``meta/{train,val}.txt``, mmpretrain's ``ImageNet``) and a
COCO-layout set (``DIR/data/coco/{train2017,val2017}`` +
``annotations/instances_{train,val}2017.json``), then runs ``tools/train.py``
once per config and per ``--amp`` setting: the paper searches (Cream at 14M
and 287M, the release, AlphaNet sandwich, K-shot on both spaces) with their
final selection and export on a small held-out subset, a retrain config and
a RetinaNet config. The configs are not edited: every run is shortened with
``--cfg-options`` (an iteration-based loop of ``--iters`` steps, a small
batch, 8 held-out images, a 4-candidate final search, 1 BN calibration
batch, the meta step every 2 iterations; on ``--device cpu`` also small
crops). It prints one ``PASS``/``FAIL`` line per run with the training
throughput (images per second: batch / median iteration time of mmengine's
log, first iteration excluded) and the reason of a failure, and exits 1 if
any run failed. On one H200 the plan takes under 8 minutes; ``--device cpu``
runs the same plan on CPU with tiny crops (so the script keeps working).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSES = 10
COCO_CLASSES = ((1, 'person'), (3, 'car'), (18, 'dog'))


@dataclass
class Check:
    """One config of the plan: ``kind`` decides its shortening options."""
    name: str
    config: str
    kind: str  # cream | sandwich | kshot | retrain | det
    extra: dict = field(default_factory=dict)


PLAN = [
    Check('cream-14m', 'configs/search/cream_paper_14m_in1k.py', 'cream'),
    Check('cream-287m', 'configs/search/cream_paper_287m_in1k.py', 'cream'),
    Check('cream-release', 'configs/search/cream_release_in1k.py', 'cream',
          {'model.warmup.epochs': 0}),
    Check('sandwich', 'configs/search/alphanet_sandwich_in1k.py', 'sandwich'),
    Check('kshot', 'configs/search/kshot_paper_in1k.py', 'kshot'),
    Check('kshot-attentive', 'configs/search/kshot_paper_attentive_in1k.py',
          'kshot', {'model.simplex.widths_per_arch': 2}),
    Check('retrain-287m', 'configs/cream/cream-287m_16xb128_in1k.py',
          'retrain'),
    Check('retinanet-s', 'configs/retinanet/retinanet_cream-s_fpn_1x_coco.py',
          'det'),
]
SEARCH_KINDS = ('cream', 'sandwich', 'kshot')


# ---------------------------------------------------------------- data
def _image(size, seed):
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    h, w = size
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[h // 4:3 * h // 4, w // 4:3 * w // 4] = rng.integers(0, 256, 3)
    return Image.fromarray(img)


def make_imagenet(root: Path, size: int, per_class=(8, 4)) -> Path:
    """mmpretrain ImageNet layout: ``<split>/<class>/<name>.JPEG`` and
    ``meta/<split>.txt`` lines ``<class>/<name>.JPEG <label>``."""
    (root / 'meta').mkdir(parents=True, exist_ok=True)
    for split, n in zip(('train', 'val'), per_class):
        lines = []
        for c in range(CLASSES):
            d = root / split / f'n{c:08d}'
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                name = f'n{c:08d}/{split}_{c}_{i}.JPEG'
                _image((size, size + size // 4),
                       hash((split, c, i)) % 2**32).save(root / split / name)
                lines.append(f'{name} {c}')
        (root / 'meta' / f'{split}.txt').write_text('\n'.join(lines) + '\n')
    return root


def make_coco(root: Path, size: tuple, n=(8, 4)) -> Path:
    """COCO layout with 1-3 boxes of 3 COCO categories per image."""
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    rnd = random.Random(0)
    for split, count in zip(('train2017', 'val2017'), n):
        (root / split).mkdir(exist_ok=True)
        images, anns = [], []
        h, w = size
        for i in range(count):
            name = f'{i:012d}.jpg'
            _image((h, w), 1000 + i + (0 if split[0] == 't' else 500)).save(
                root / split / name)
            images.append(dict(id=i + 1, file_name=name, height=h, width=w))
            for _ in range(rnd.randint(1, 3)):
                bw, bh = rnd.randint(w // 6, w // 2), rnd.randint(h // 6,
                                                                  h // 2)
                x, y = rnd.randint(0, w - bw), rnd.randint(0, h - bh)
                anns.append(dict(id=len(anns) + 1, image_id=i + 1,
                                 category_id=rnd.choice(COCO_CLASSES)[0],
                                 bbox=[x, y, bw, bh], area=bw * bh,
                                 iscrowd=0))
        cats = [dict(id=i, name=n, supercategory='x') for i, n in
                COCO_CLASSES]
        (root / 'annotations' / f'instances_{split}.json').write_text(
            json.dumps(dict(images=images, annotations=anns,
                            categories=cats)))
    return root


# ------------------------------------------------------------- options
def _index(pipeline, kind):
    return [i for i, t in enumerate(pipeline) if t['type'] == kind]


def _crop_options(cfg, key, crop):
    """Small crops for --device cpu: each RandomResizedCrop / CenterCrop /
    ResizeEdge of the loader's pipeline (where the config has them)."""
    loader = cfg.get(key)
    if not loader:
        return {}
    inner = _inner_dataset(loader)
    pipe, opts = _get(loader, inner)['pipeline'], {}
    at = f'{key}.{inner}.pipeline'
    for i in _index(pipe, 'RandomResizedCrop'):
        opts[f'{at}.{i}.scale'] = crop
    for i in _index(pipe, 'CenterCrop'):
        opts[f'{at}.{i}.crop_size'] = crop
    for i in _index(pipe, 'ResizeEdge'):
        opts[f'{at}.{i}.scale'] = crop * 8 // 7
    for i in _index(pipe, 'Resize'):
        opts[f'{at}.{i}.scale'] = (crop * 4, crop * 3)
    return opts


def _inner_dataset(loader) -> str:
    """Dotted path of the dataset that holds the pipeline and data root,
    through wrappers such as ``SeededSubset`` (``dataset.dataset``)."""
    path, ds = 'dataset', loader['dataset']
    while 'pipeline' not in ds and 'dataset' in ds:
        path, ds = path + '.dataset', ds['dataset']
    return path


def _get(loader, path: str):
    for k in path.split('.'):
        loader = loader[k]
    return loader


def _loader(key, data_root, batch, workers, cfg=None):
    inner = _inner_dataset(cfg[key]) if cfg is not None and cfg.get(key) \
        else 'dataset'
    opts = {f'{key}.batch_size': batch, f'{key}.num_workers': workers,
            f'{key}.persistent_workers': workers > 0,
            f'{key}.{inner}.data_root': str(data_root)}
    return opts


def options(check: Check, device: str, data: Path, iters: int) -> dict:
    """--cfg-options that shorten ``check`` (the config is read, not
    edited)."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(ROOT / check.config))
    cpu = device == 'cpu'
    workers = 0 if cpu else 4
    batch = {'det': 2 if cpu else 4, 'sandwich': 2 if cpu else 16,
             'kshot': 4 if cpu else 32}.get(check.kind, 4 if cpu else 64)
    opts = {'train_cfg._delete_': True,
            'train_cfg.type': 'IterBasedTrainLoop',
            'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters,
            'default_hooks.logger.interval': 1,
            'default_hooks.checkpoint.by_epoch': False,
            'default_hooks.checkpoint.interval': iters,
            'log_processor.by_epoch': False,
            'randomness.seed': 0}
    if check.kind == 'det':
        root = data / 'coco'
        opts.update(_loader('train_dataloader', f'{root}/', batch, workers))
        for key in ('val_dataloader', 'test_dataloader'):
            opts.update(_loader(key, f'{root}/', 1, workers))
        for key in ('val_evaluator', 'test_evaluator'):
            opts[f'{key}.ann_file'] = \
                f'{root}/annotations/instances_val2017.json'
        opts['model.backbone.init_cfg'] = None  # no checkpoint download
    else:
        root = data / 'imagenet'
        opts.update(_loader('train_dataloader', root, batch, workers, cfg))
        if check.kind == 'retrain':
            for key in ('val_dataloader', 'test_dataloader'):
                opts.update(_loader(key, root, 4, workers, cfg))
        else:
            opts.update(_loader('search_val_dataloader', root, 4, workers,
                                cfg))
            opts['search_val_dataloader.dataset.indices'] = 8
            if cfg.get('final_dataloader'):  # disjoint from the 8 above
                opts.update(_loader('final_dataloader', root, 4, workers,
                                    cfg))
                if _inner_dataset(cfg.final_dataloader) != 'dataset':
                    opts['final_dataloader.dataset.indices'] = 8
                    opts['final_dataloader.dataset.offset'] = 8
    if check.kind == 'cream':
        opts['model.meta.interval'] = 2  # Eq. 6 inside the short run
    if check.kind in ('sandwich', 'kshot'):
        opts['model.calib_batches'] = 1
        final = dict(population=4, generations=1)
        final.update(dict(mutations=2, crossovers=2)
                     if check.kind == 'sandwich' else dict(parents=2))
        for k, v in final.items():
            opts[f'custom_hooks.0.final_args.{k}'] = v
    if check.kind == 'kshot':
        opts['model.warmup.epochs'] = 0  # the simplex step inside the run
        opts['model.simplex.paths'] = 2
    if cpu:
        crop = 32
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                    'search_val_dataloader', 'final_dataloader'):
            opts.update(_crop_options(cfg, key, crop))
    opts.update(check.extra)
    return opts


def _cli_value(v) -> str:
    if isinstance(v, tuple):
        return '(' + ','.join(map(str, v)) + ')'
    return str(v)


def command(check: Check, amp: bool, opts: dict, work_dir: Path) -> list:
    cmd = [sys.executable, str(ROOT / 'tools' / 'train.py'),
           str(ROOT / check.config), '--work-dir', str(work_dir)]
    if amp:
        cmd.append('--amp')
    cmd.append('--cfg-options')
    cmd += [f'{k}={_cli_value(v)}' for k, v in opts.items()]
    return cmd


# ---------------------------------------------------------------- runs
def throughput(work_dir: Path, batch: int) -> float | None:
    """Images / s: ``batch`` over the median logged iteration time (the
    first iteration, with its start-up, excluded)."""
    times = []
    for f in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            if 'time' in rec and rec.get('iter', 0) > 1:
                times.append(float(rec['time']))
    return batch / statistics.median(times) if times else None


def _reason(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if 'Error' in ln or 'error:' in ln or 'Exception' in ln:
            return ln[:300]
    return lines[-1][:300] if lines else 'no output'


def artefacts(check: Check, work_dir: Path) -> list[str]:
    """What a finished run must leave: the export of a search (arch,
    configs, inherited weights), the checkpoint of the last iteration."""
    missing = []
    if check.kind in SEARCH_KINDS:
        for name in ('searched.arch', 'searched_cls.py',
                     'searched_retinanet.py', 'searched_inherited.pth'):
            if not (work_dir / 'search' / name).is_file():
                missing.append(f'search/{name}')
    if not list(work_dir.glob('iter_*.pth')):
        missing.append('iter_*.pth')
    return missing


def run(check, amp, device, data, out, iters, timeout) -> dict:
    opts = options(check, device, data, iters)
    work_dir = out / 'runs' / f"{check.name}{'-amp' if amp else ''}"
    cmd = command(check, amp, opts, work_dir)
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{os.environ.get('PYTHONPATH', '')}")
    if device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    start = time.time()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout)
        rc, log = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as err:
        rc = 124
        log = f'timed out after {timeout} s\n' + str(err.stdout or '')
    wall = time.time() - start
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / 'gpu_check.log').write_text(log if isinstance(log, str)
                                            else log.decode())
    missing = artefacts(check, work_dir) if rc == 0 else []
    ok = rc == 0 and not missing
    reason = '' if ok else (_reason(log) if rc else
                            'missing ' + ', '.join(missing))
    return dict(name=check.name, amp=amp, ok=ok, rc=rc, wall_s=wall,
                images_per_s=throughput(work_dir,
                                        opts['train_dataloader.batch_size']),
                reason=reason, log=str(work_dir / 'gpu_check.log'))


def line(r: dict) -> str:
    ips = f"{r['images_per_s']:8.1f} img/s" if r['images_per_s'] else \
        '       - img/s'
    return (f"{'PASS' if r['ok'] else 'FAIL'}  {r['name']:16s} "
            f"amp={'on ' if r['amp'] else 'off'} {ips} {r['wall_s']:6.1f} s"
            + (f"  {r['reason']}" if r['reason'] else ''))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', choices=('cuda', 'cpu'), default='cuda')
    p.add_argument('--out', default='work_dirs/gpu_check')
    p.add_argument('--only', nargs='+', metavar='NAME',
                   choices=[c.name for c in PLAN],
                   help='run these checks only')
    p.add_argument('--amp', choices=('both', 'on', 'off'), default='both')
    p.add_argument('--iters', type=int, default=None,
                   help='iterations per run (default 6 on cuda, 2 on cpu)')
    p.add_argument('--timeout', type=int, default=None,
                   help='seconds per run (default 120 on cuda, 900 on cpu)')
    p.add_argument('--plan', action='store_true',
                   help='print the runs and their commands, run nothing')
    args = p.parse_args(argv)
    if args.iters is None:
        args.iters = 6 if args.device == 'cuda' else 2
    if args.iters < 2:
        p.error('--iters: at least 2 (the first one is not timed)')
    if args.timeout is None:
        args.timeout = 120 if args.device == 'cuda' else 900
    return args


def plan(args) -> list[tuple[Check, bool]]:
    checks = [c for c in PLAN if not args.only or c.name in args.only]
    amps = {'both': (False, True), 'on': (True, ), 'off': (False, )}[args.amp]
    return [(c, a) for c in checks for a in amps]


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    data = out / 'data'
    runs = plan(args)
    if args.plan:
        for check, amp in runs:
            print(' '.join(command(check, amp, options(
                check, args.device, data, args.iters),
                out / 'runs' / check.name)))
        return 0
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            print('gpu_check: --device cuda but torch sees no GPU '
                  '(use --device cpu)', file=sys.stderr)
            return 2
    cpu = args.device == 'cpu'
    make_imagenet(data / 'imagenet', 40 if cpu else 256)
    make_coco(data / 'coco', (96, 128) if cpu else (480, 640))
    print(f'gpu_check: {len(runs)} runs on {args.device}, {args.iters} '
          f'iterations each; logs in {out}/runs', flush=True)
    results = []
    for check, amp in runs:
        results.append(run(check, amp, args.device, data, out, args.iters,
                           args.timeout))
        print(line(results[-1]), flush=True)
    (out / 'results.json').write_text(json.dumps(results, indent=1))
    failed = sum(not r['ok'] for r in results)
    print(f'gpu_check: {len(results) - failed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
