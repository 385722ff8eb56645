"""``SeededSubset``: a seeded random sample of any dataset.

The board's held-out subset (Eq. 3: 2,048 images of ImageNet val in the
paper) must be a random sample: the first N images of a dataset stored in
class order are a handful of classes. ``BaseDataset``'s own ``indices=N``
keeps the first N, so the search configs wrap the dataset::

    dataset=dict(type='SeededSubset', indices=2048, seed=0,
                 dataset=dict(type='ImageNet', split='val', ...))

The sample is a fixed function of ``seed`` and the inner dataset's length
(a NumPy permutation), never of the runner's seed, rank or iteration: every
rank and every resumed run holds the same images. ``offset`` skips the
permutation's first images, so two wrappers with the same seed and
non-overlapping ranges are disjoint -- the board's scoring subset
(``offset=0``) and the final selection's data (``offset`` = its size,
Alg. 1 line 14 on held-out data the board never saw):
:func:`subset_range` and :func:`ranges_overlap` check that from configs.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mmengine.registry import DATASETS
from torch.utils.data import Dataset


# in mmengine's root registry: found from every scope (mmpretrain, mmdet);
# the inner dataset is built in the current default scope
@DATASETS.register_module()
class SeededSubset(Dataset):
    """``indices`` images of ``dataset`` drawn at random (``seed``).

    Args:
        dataset (dict | Dataset): the inner dataset (config or object).
        indices: number of images (None: all from ``offset`` on); a list
            selects those inner indices as given (no permutation).
        seed: seed of the permutation (config value, not the runner's).
        offset: images of the permutation skipped first (disjoint parts
            of one dataset share ``seed`` and use consecutive ranges).
    """

    def __init__(self, dataset, indices: int | Sequence[int] | None = None,
                 seed: int = 0, offset: int = 0):
        self.dataset = (_build(dataset) if isinstance(dataset, dict)
                        else dataset)
        n = len(self.dataset)
        if indices is not None and not isinstance(indices, int):
            idx = np.asarray(list(indices), dtype=np.int64)
            if len(idx) and (idx.min() < 0 or idx.max() >= n):
                raise ValueError(f'SeededSubset: indices outside [0, {n})')
        else:
            stop = n if indices is None else int(offset) + int(indices)
            if int(offset) < 0 or stop > n or stop < int(offset):
                raise ValueError(
                    f'SeededSubset: offset={offset}, indices={indices} ask '
                    f'for images [{offset}, {stop}) of a dataset of {n}')
            perm = np.random.default_rng(int(seed)).permutation(n)
            idx = perm[int(offset):stop]
        self.indices = idx
        self.seed, self.offset = int(seed), int(offset)

    @property
    def metainfo(self) -> dict:
        return getattr(self.dataset, 'metainfo', {})

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.dataset[int(self.indices[i])]

    def get_data_info(self, i: int) -> dict:
        """The inner dataset's annotation of image ``i`` (width, height:
        what mmdet's ``AspectRatioBatchSampler`` reads)."""
        return self.dataset.get_data_info(int(self.indices[i]))

    def get_gt_labels(self) -> np.ndarray:
        """Labels of the sample (inner ``get_cat_ids``, no image made)."""
        return np.array([self.dataset.get_cat_ids(int(j))[0]
                         for j in self.indices])


def _build(cfg: dict):
    """The inner dataset in the current default scope (mmpretrain's when
    none is set)."""
    from mmengine.registry import DefaultScope
    if DefaultScope.get_current_instance() is None:
        from mmpretrain.registry import DATASETS as PRETRAIN_DATASETS
        return PRETRAIN_DATASETS.build(cfg)
    return DATASETS.build(cfg)


def inner_cfg(dataset_cfg: dict) -> dict:
    """The dataset config a :class:`SeededSubset` config wraps (the config
    itself otherwise)."""
    if dataset_cfg.get('type') == 'SeededSubset':
        return dataset_cfg['dataset']
    return dataset_cfg


def subset_range(dataset_cfg: dict) -> tuple | None:
    """``(inner config without pipeline, seed, start, stop)`` of a
    :class:`SeededSubset` config with an int/None size (stop None: the
    rest); None for any other config."""
    if dataset_cfg.get('type') != 'SeededSubset':
        return None
    size = dataset_cfg.get('indices')
    if size is not None and not isinstance(size, int):
        return None
    inner = {k: v for k, v in dict(dataset_cfg['dataset']).items()
             if k not in ('pipeline', 'test_mode', 'lazy_init')}
    start = int(dataset_cfg.get('offset', 0))
    return (inner, int(dataset_cfg.get('seed', 0)), start,
            None if size is None else start + int(size))


def ranges_overlap(a: dict, b: dict) -> bool | None:
    """Whether two dataset configs hold common images, as far as the
    configs tell: both :class:`SeededSubset` ranges of the same inner
    dataset and seed -> whether the ranges intersect; the same inner
    dataset otherwise (a subset and its whole dataset, two samples of
    different seeds, twice the same config) -> True; different inner
    datasets -> None (unknown: the loaded images are compared instead)."""
    strip = ('pipeline', 'test_mode', 'lazy_init', 'indices')

    def plain(cfg):  # the dataset itself (BaseDataset's indices: a part)
        return {k: v for k, v in dict(inner_cfg(cfg)).items()
                if k not in strip}
    if plain(a) != plain(b):
        return None
    ra, rb = subset_range(a), subset_range(b)
    if ra is None or rb is None or ra[1] != rb[1]:
        return True  # a subset of the whole, or two independent samples
    inf = float('inf')
    return ra[2] < (rb[3] if rb[3] is not None else inf) and \
        rb[2] < (ra[3] if ra[3] is not None else inf)
