"""``EmbeddedCocoDataset``: the ``trees`` / ``composite`` sets in mmdet.

A ``CocoDataset`` whose files are built on first use and whose ``metainfo``
classes come from the set.  Usage in a config (``default_scope='mmdet'``)::

    dataset=dict(type='EmbeddedCocoDataset', name='trees', split='val',
                 test_mode=True, pipeline=test_pipeline)

is the same as the plain COCO form (once the files exist)::

    dataset=dict(type='CocoDataset', data_root='data/embedded/trees/',
                 ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'),
                 metainfo=dict(classes=('tree', )), ...)

and ``CocoMetric(ann_file=<data_root>/annotations/instances_val.json)``
evaluates it exactly as COCO val2017.
"""
from __future__ import annotations

import colorsys

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from . import catalog
from .cache import read_manifest

SPLIT_ALIASES = {'test': 'val'}


def palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` distinct RGB colours (evenly spaced hues)."""
    return [
        tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / n, 0.8, 0.95))
        for i in range(n)
    ]


def det_classes(name: str, data_root=None) -> tuple[str, ...]:
    """Classes of detection set ``name`` (built first if missing)."""
    root = catalog.ensure(name, data_root)
    return tuple(read_manifest(root)['meta']['classes'])


@DATASETS.register_module()
class EmbeddedCocoDataset(CocoDataset):
    """COCO-format ``trees`` or ``composite`` set, built on first use.

    Args:
        name: ``'trees'`` (1 class) or ``'composite'`` (10 classes).
        split: ``'train'`` or ``'val'`` (``'test'`` is an alias of val).
        data_root: folder of the set; default ``<cache root>/<name>``.
        ann_file, data_prefix: default to
            ``annotations/instances_<split>.json`` and
            ``dict(img='<split>/')`` (relative to ``data_root``).
        **kwargs: mmdet ``CocoDataset`` arguments (``pipeline``,
            ``filter_cfg``, ``test_mode``, ``indices``, ``metainfo`` ...).
    """

    def __init__(self, name: str = 'trees', split: str = 'train',
                 data_root: str | None = None, ann_file: str | None = None,
                 data_prefix: dict | None = None,
                 metainfo: dict | None = None, **kwargs):
        if name not in catalog.DET_NAMES:
            raise KeyError(f'unknown detection set {name!r}; choose from '
                           f'{catalog.DET_NAMES}')
        split = SPLIT_ALIASES.get(split, split)
        self.name, self.split = name, split
        root = catalog.ensure(name, data_root)
        classes = tuple(read_manifest(root)['meta']['classes'])
        metainfo = {'classes': classes, 'palette': palette(len(classes)),
                    **(metainfo or {})}
        super().__init__(
            data_root=str(root),
            ann_file=ann_file or f'annotations/instances_{split}.json',
            data_prefix=data_prefix or dict(img=f'{split}/'),
            metainfo=metainfo, **kwargs)
