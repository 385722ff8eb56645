"""Write the paper's subImageNet lists (§4.1) as mmpretrain annotation files.

The supernet search of Cream of the Crop trains and ranks paths on
*subImageNet*: 100 randomly chosen ImageNet classes with 250 training and 50
validation images per class, **both taken from ImageNet's train folder**
(disjoint), so the official val images stay unseen during the search.  This
tool writes that subset as lists, without copying images::

    python tools/make_subimagenet.py [data/imagenet] [--seed 0]
        [--num-classes 100] [--train-per-class 250] [--val-per-class 50]
        [--out-dir <root>/meta]

Input: an ImageNet folder in either mmpretrain layout, ``train/<wnid>/*``
and ``val/<wnid>/*`` (class folders) or flat ``val/*`` with ``meta/val.txt``
(``file label`` lines, labels indexing the sorted train class folders).
Output (in ``--out-dir``, default ``<root>/meta``)::

    subimagenet_classes.txt   the chosen wnids, sorted; line i = label i
    subimagenet_train.txt     "<wnid>/<file> <label>", relative to train/
    subimagenet_val.txt       same format, relative to train/ (held-out
                              train images, the search's validation set)
    subimagenet_test.txt      ImageNet's official val images of the chosen
                              classes, relative to val/ (only if val/ exists)

Read them in a config with mmpretrain's ``ImageNet`` (or ``CustomDataset``)::

    dict(type='ImageNet', data_root='data/imagenet', data_prefix='train',
         ann_file='meta/subimagenet_train.txt',   # or subimagenet_val.txt
         classes='data/imagenet/meta/subimagenet_classes.txt')

(``classes`` is read relative to the working directory, not ``data_root``;
use ``data_prefix='val'`` with ``subimagenet_test.txt``.)

Deterministic: folder listings are sorted before sampling, the classes are
``random.Random(seed).sample(sorted wnids, n)`` and each class's images are
sampled by a generator seeded with ``(seed, wnid)``, so a class's images do
not depend on which other classes were drawn.  (The authors' released
``generate_subImageNet.py`` instead takes the first 100 classes and the first
350 files of each; the paper describes a random draw, which this follows.)
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

# the extensions mmpretrain's ImageNet dataset accepts (case-insensitive)
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif')
PAPER = dict(num_classes=100, train_per_class=250, val_per_class=50)
NAMES = dict(classes='subimagenet_classes.txt', train='subimagenet_train.txt',
             val='subimagenet_val.txt', test='subimagenet_test.txt')


class SubImageNetError(RuntimeError):
    """Missing folders or too few classes/images; the message says which."""


def _images(folder: Path) -> list[str]:
    """Sorted image file names in ``folder`` (no hidden files)."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it
                      if e.is_file() and not e.name.startswith('.')
                      and e.name.lower().endswith(IMG_EXTENSIONS))


def _class_dirs(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it
                      if e.is_dir() and not e.name.startswith('.'))


def train_classes(root: Path) -> list[str]:
    """Sorted class folders of ``<root>/train`` (errors name what is
    missing)."""
    train = root / 'train'
    if not train.is_dir():
        raise SubImageNetError(
            f'ImageNet train folder not found: {train} (expected '
            f'{train}/<wnid>/*.JPEG; pass the ImageNet root as the first '
            'argument)')
    classes = _class_dirs(train)
    if not classes:
        raise SubImageNetError(
            f'no class folders in {train} (expected {train}/<wnid>/*.JPEG)')
    return classes


def choose(root: Path, seed: int = 0, num_classes: int = 100,
           train_per_class: int = 250, val_per_class: int = 50):
    """(chosen wnids sorted, {wnid: train files}, {wnid: val files})."""
    classes = train_classes(root)
    if len(classes) < num_classes:
        raise SubImageNetError(
            f'{root / "train"} has {len(classes)} class folders; '
            f'{num_classes} requested (--num-classes)')
    chosen = sorted(random.Random(seed).sample(classes, num_classes))
    need = train_per_class + val_per_class
    train, val = {}, {}
    for wnid in chosen:
        folder = root / 'train' / wnid
        files = _images(folder)
        if len(files) < need:
            raise SubImageNetError(
                f'class {wnid} has only {len(files)} images in {folder}; '
                f'{need} needed ({train_per_class} train + {val_per_class} '
                'val, --train-per-class/--val-per-class)')
        picked = random.Random(f'{seed}/{wnid}').sample(files, need)
        train[wnid] = sorted(picked[:train_per_class])
        val[wnid] = sorted(picked[train_per_class:])
    return chosen, train, val


def official_val(root: Path, chosen: list[str], all_classes: list[str]):
    """ImageNet's val images of ``chosen`` as ``(rel. path, wnid)``, or None.

    Reads ``val/<wnid>/`` class folders, else flat ``val/`` with
    ``meta/val.txt`` (labels index the sorted train classes).  None when
    there is no ``val/`` folder.
    """
    val = root / 'val'
    if not val.is_dir():
        return None
    if _class_dirs(val):
        out = []
        for wnid in chosen:
            if not (val / wnid).is_dir():
                raise SubImageNetError(
                    f'{val} has class folders but not {val / wnid}')
            out += [(f'{wnid}/{f}', wnid) for f in _images(val / wnid)]
        return out
    ann = root / 'meta' / 'val.txt'
    if not ann.is_file():
        raise SubImageNetError(
            f'{val} has no class folders and {ann} (mmpretrain\'s '
            '"file label" list of the flat val folder) is missing')
    wanted, out = set(chosen), []
    for n, line in enumerate(ann.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            name, label = line.rsplit(maxsplit=1)
            wnid = all_classes[int(label)]
        except (ValueError, IndexError):
            raise SubImageNetError(
                f'{ann}:{n}: expected "<file> <label>" with a label below '
                f'{len(all_classes)} (the train class folders), got '
                f'{line!r}') from None
        if wnid in wanted:
            out.append((name, wnid))
    return sorted(out, key=lambda x: (x[1], x[0]))


def _write(path: Path, lines: list[str]) -> None:
    path.write_text(''.join(f'{x}\n' for x in lines))


def make_subimagenet(root, out_dir=None, seed: int = 0,
                     num_classes: int = 100, train_per_class: int = 250,
                     val_per_class: int = 50) -> dict:
    """Write the lists; return ``{'classes'|'train'|'val'|'test': path}``
    (``test`` None without a val folder) and the counts."""
    root = Path(root)
    out_dir = Path(out_dir) if out_dir else root / 'meta'
    all_classes = train_classes(root)
    chosen, train, val = choose(root, seed, num_classes, train_per_class,
                                val_per_class)
    label = {wnid: i for i, wnid in enumerate(chosen)}
    test = official_val(root, chosen, all_classes)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {k: out_dir / v for k, v in NAMES.items()}
    _write(paths['classes'], chosen)
    for split, files in (('train', train), ('val', val)):
        _write(paths[split], [f'{w}/{f} {label[w]}' for w in chosen
                              for f in files[w]])
    if test is None:
        paths['test'] = None
    else:
        _write(paths['test'], [f'{p} {label[w]}' for p, w in test])
    counts = dict(classes=len(chosen),
                  train=sum(map(len, train.values())),
                  val=sum(map(len, val.values())),
                  test=None if test is None else len(test))
    return dict(paths=paths, counts=counts)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Write the paper's subImageNet lists (mmpretrain ann "
        'files) from an ImageNet folder')
    p.add_argument('root', nargs='?', default='data/imagenet',
                   help='ImageNet root with train/<wnid>/ (default: '
                   '%(default)s)')
    p.add_argument('--out-dir', help='where to write the lists (default: '
                   '<root>/meta)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--num-classes', type=int,
                   default=PAPER['num_classes'])
    p.add_argument('--train-per-class', type=int,
                   default=PAPER['train_per_class'])
    p.add_argument('--val-per-class', type=int,
                   default=PAPER['val_per_class'])
    args = p.parse_args(argv)
    for k in ('num_classes', 'train_per_class', 'val_per_class'):
        if getattr(args, k) < 1:
            p.error(f'--{k.replace("_", "-")} must be >= 1')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:
        result = make_subimagenet(
            args.root, args.out_dir, args.seed, args.num_classes,
            args.train_per_class, args.val_per_class)
    except SubImageNetError as err:
        sys.exit(f'make_subimagenet: error: {err}')
    c, p = result['counts'], result['paths']
    print(f'subImageNet (seed {args.seed}): {c["classes"]} classes -> '
          f'{p["classes"]}')
    print(f'  train: {c["train"]} images -> {p["train"]}')
    print(f'  val:   {c["val"]} images (from train/, disjoint) -> '
          f'{p["val"]}')
    if p['test'] is None:
        print(f'  test:  skipped (no {Path(args.root) / "val"} folder)')
    else:
        print(f'  test:  {c["test"]} ImageNet val images -> {p["test"]}')
    return result


if __name__ == '__main__':
    main()
