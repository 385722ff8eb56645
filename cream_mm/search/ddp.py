"""Distributed wrapper of the search: delegate to ``CreamSearch.train_step``.

mmengine's ``MMDistributedDataParallel.train_step`` runs its own forward and
backward, bypassing the algorithm's ``train_step`` (Alg. 1). The search
synchronises itself (gradients, hypergradients, matching degrees and scores
are averaged over ranks, see :mod:`cream_mm.search.cream`), so this wrapper
only makes rank 0's initial state everyone's and delegates. It passes no
``device_ids`` and works with gloo on CPU::

    model_wrapper_cfg = dict(type='CreamSearchDDP')
"""
from __future__ import annotations

import torch.nn as nn
from mmengine.registry import MODEL_WRAPPERS

from .runtime import broadcast_module


@MODEL_WRAPPERS.register_module()
class CreamSearchDDP(nn.Module):
    """Broadcast once from rank 0, then call the module's step methods."""

    def __init__(self, module: nn.Module, **kwargs):
        super().__init__()
        self.module = module
        broadcast_module(module)

    def train_step(self, data, optim_wrapper):
        return self.module.train_step(data, optim_wrapper)

    def val_step(self, data):
        return self.module.val_step(data)

    def test_step(self, data):
        return self.module.test_step(data)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)
