"""Two optimisers for the search: ``supernet`` (W: backbone and head) and
``meta`` (theta of Eq. 4), as an mmengine ``OptimWrapperDict`` -- so the
runner schedules, logs, saves and resumes both (``param_scheduler`` may be a
dict keyed by ``supernet`` / ``meta``)::

    optim_wrapper = dict(
        constructor='CreamOptimWrapperConstructor',
        supernet=dict(optimizer=dict(type='SGD', lr=0.5, momentum=0.9,
                                     weight_decay=4e-5)),
        meta=dict(optimizer=dict(type='SGD', lr=1e-4)))
"""
from __future__ import annotations

import copy

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

PARTS = ('supernet', 'meta')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class CreamOptimWrapperConstructor:
    """Builds ``OptimWrapperDict(supernet=..., meta=...)`` for CreamSearch;
    each part is an ordinary optim-wrapper config (``paramwise_cfg`` too)."""

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg=None):
        cfg = copy.deepcopy(dict(optim_wrapper_cfg))
        unknown = set(cfg) - set(PARTS)
        if unknown or 'supernet' not in cfg:
            raise ValueError(f'optim_wrapper: keys {sorted(cfg)}; '
                             f'CreamOptimWrapperConstructor takes '
                             f"'supernet' (required) and 'meta'")
        self.cfg = cfg

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if is_model_wrapper(model):
            model = model.module
        parts = dict(supernet=nn.ModuleDict(dict(backbone=model.backbone,
                                                 head=model.head)))
        if getattr(model, 'meta_net', None) is not None:
            parts['meta'] = nn.ModuleDict(dict(meta_net=model.meta_net))
        wrappers = {}
        for name, module in parts.items():
            if name not in self.cfg:
                raise ValueError(f"optim_wrapper: missing '{name}' (the "
                                 f'model has a {name} part)')
            cfg = copy.deepcopy(self.cfg[name])
            paramwise = cfg.pop('paramwise_cfg', None)
            wrappers[name] = DefaultOptimWrapperConstructor(cfg, paramwise)(
                module)
        return OptimWrapperDict(**wrappers)
