"""What every supernet-training algorithm (Cream, the sandwich rule,
K-shot) shares as an mmengine ``BaseModel``: building the supernet
(``backbone``), the classification head and the data preprocessor, NHWC
memory format, and the held-out batches used to score subnets
(:meth:`attach_search_val`, attached by the search hook)."""
from __future__ import annotations

import torch
from mmengine.model import BaseModel
import mmpretrain.models  # noqa: F401  (registers ClsDataPreprocessor)
from mmpretrain.registry import MODELS

from .runtime import all_reduce_sum


def build_preprocessor(cfg):
    """``ClsDataPreprocessor`` updated by ``cfg`` (a dict), or ``cfg``
    itself when it is already a module."""
    if cfg is None or isinstance(cfg, dict):
        return MODELS.build(dict(dict(type='ClsDataPreprocessor'),
                                 **(cfg or {})))
    return cfg


class SupernetAlgorithm(BaseModel):
    """Base of the search algorithms: ``backbone`` (a
    :class:`~cream_mm.search.protocol.Supernet`), ``head``,
    ``num_classes``, ``channels_last`` and the held-out batches.

    Args:
        supernet (dict): config of the supernet.
        head (dict): config of the classification head.
        channels_last: keep weights and inputs in NHWC memory format (the
            same computation; ~1.5x faster convolutions on x86 CPUs).
        data_preprocessor (dict): mmpretrain data preprocessor.
    """

    def __init__(self, supernet: dict, head: dict,
                 channels_last: bool = False,
                 data_preprocessor: dict | None = None, init_cfg=None):
        super().__init__(data_preprocessor=build_preprocessor(
            data_preprocessor), init_cfg=init_cfg)
        self.backbone = MODELS.build(supernet)
        self.head = MODELS.build(head)
        self.channels_last = bool(channels_last)
        if self.channels_last:  # NHWC weights and inputs (faster on CPU)
            self.backbone.to(memory_format=torch.channels_last)
            self.head.to(memory_format=torch.channels_last)
        self.num_classes = self.head.num_classes
        self._val_batches: list | None = None

    @staticmethod
    def _labels(data_samples) -> torch.Tensor:
        return torch.cat([s.gt_label for s in data_samples])

    # ------------------------------------------------------ validation data
    def attach_search_val(self, batches: list) -> None:
        """Held-out batches (raw dataloader outputs) for subnet scoring;
        under DDP each rank holds its shard."""
        self._val_batches = list(batches)
        self._val_count = None
        if not self._val_batches:
            raise ValueError('attach_search_val: no batches')

    def _val_batch(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._val_batches:
            raise RuntimeError(
                'scoring subnets needs held-out data: add the search hook '
                '(CreamSearchHook / SupernetSearchHook) with a '
                'search_val_dataloader or call attach_search_val()')
        data = self.data_preprocessor(
            self._val_batches[i % len(self._val_batches)], False)
        return data['inputs'], self._labels(data['data_samples'])

    @torch.no_grad()
    def batch_top1(self, logits: torch.Tensor, y: torch.Tensor) -> float:
        """Top-1 (%) of ``logits``, counts summed over ranks."""
        counts = torch.tensor([(logits.argmax(1) == y).sum().item(), len(y)],
                              dtype=torch.float64)
        all_reduce_sum(counts)
        return float(100. * counts[0] / counts[1])
