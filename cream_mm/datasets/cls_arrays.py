"""Classification arrays and their deterministic splits.

Two sources, each cached as one ``<name>.npz`` of uint8 arrays
(``images`` N x 28 x 28, ``labels`` N) plus int32 index arrays, one per split:

=============  ==========================  ==========================
split          ``fashion_mnist`` (70,000)  ``mnist5k`` (5,000)
=============  ==========================  ==========================
train          60,000 (official train)     4,000 (400 per class)
val (= test)   10,000 (official test)      1,000 (100 per class, held out)
search_train   50,000 = train - search_val 3,500 = train - search_val
search_val     10,000 (1,000 per class)    500 (50 per class)
=============  ==========================  ==========================

NAS convention: the supernet trains on ``search_train`` and architectures
are ranked on ``search_val`` (carved from train, class-balanced, seed 0), so
the search never sees ``val``; ``val`` is only for the final report of the
retrained (stand-alone) architectures, which train on the full ``train``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import sources
from .cache import save_npz

SEED = 0
SPLITS = ('train', 'val', 'search_train', 'search_val')
# per-class counts of the carved splits
SPEC = {
    'fashion_mnist': dict(val=None, search_val=1000),
    'mnist5k': dict(val=100, search_val=50),
}
CLASSES = {
    'fashion_mnist': sources.FASHION_CLASSES,
    'mnist5k': sources.MNIST_CLASSES,
}


def npz_path(folder: Path, name: str) -> Path:
    """The arrays file of set ``name`` in its folder."""
    return Path(folder) / f'{name}.npz'


def pick_per_class(labels: np.ndarray, pool: np.ndarray, per_class: int,
                   rng: np.random.Generator) -> np.ndarray:
    """``per_class`` random indices of each class from ``pool``, sorted."""
    chosen = []
    for c in np.unique(labels[pool]):
        members = pool[labels[pool] == c]
        chosen.append(members[rng.permutation(len(members))[:per_class]])
    return np.sort(np.concatenate(chosen))


def make_arrays(name: str, fashion_dir: Path | None = None) -> dict:
    """Images, labels and split indices of ``name``, from the source."""
    rng = np.random.default_rng(SEED)
    spec = SPEC[name]
    if name == 'fashion_mnist':
        images, labels = sources.load_fashion_mnist(fashion_dir)
        train, val = np.arange(60000), np.arange(60000, 70000)
    elif name == 'mnist5k':
        images, labels = sources.load_mnist5k()
        val = pick_per_class(labels, np.arange(len(labels)), spec['val'], rng)
        train = np.setdiff1d(np.arange(len(labels)), val)
    else:
        raise KeyError(f'unknown classification set {name!r}; choose from '
                       f'{sorted(SPEC)}')
    search_val = pick_per_class(labels, train, spec['search_val'], rng)
    search_train = np.setdiff1d(train, search_val)
    splits = dict(train=train, val=val, search_train=search_train,
                  search_val=search_val)
    return dict(images=images, labels=labels,
                splits={k: v.astype(np.int32) for k, v in splits.items()})


def load_arrays(folder: Path, name: str) -> dict:
    """The cached arrays in the same form as :func:`make_arrays`."""
    with np.load(npz_path(folder, name), allow_pickle=False) as z:
        return dict(images=z['images'], labels=z['labels'],
                    splits={s: z[f'split_{s}'] for s in SPLITS})


def build(out_dir: Path, name: str) -> dict:
    """Write ``<name>.npz`` into ``out_dir``; return the manifest's meta."""
    arrays = make_arrays(name)
    save_npz(npz_path(out_dir, name), images=arrays['images'],
             labels=arrays['labels'].astype(np.uint8),
             **{f'split_{s}': v for s, v in arrays['splits'].items()})
    origin = (sources.fashion_mnist_dir() if name == 'fashion_mnist' else
              sources.mnist5k_csv())
    return dict(source=str(origin), seed=SEED, classes=list(CLASSES[name]),
                image_shape=[28, 28], num_images=int(len(arrays['labels'])),
                splits={s: int(len(v)) for s, v in arrays['splits'].items()})
