"""Two optimisers for the search: ``supernet`` (W: backbone and head) and
``meta`` (theta of Eq. 4), as an mmengine ``OptimWrapperDict`` -- so the
runner schedules, logs, saves and resumes both (``param_scheduler`` may be a
dict keyed by ``supernet`` / ``meta``)::

    optim_wrapper = dict(
        constructor='CreamOptimWrapperConstructor',
        supernet=dict(optimizer=dict(type='SGD', lr=0.5, momentum=0.9,
                                     weight_decay=4e-5)),
        meta=dict(optimizer=dict(type='SGD', lr=1e-4)))

Mixed precision (``tools/train.py --amp`` sets ``type='AmpOptimWrapper'``,
``'CPUAmpOptimWrapper'`` without CUDA, and ``loss_scale`` at the top; ``dtype`` may be added there too): the
top-level keys :data:`SHARED_KEYS` apply to the parts that train under AMP
-- the supernet; the meta network's Eq. 6 hypergradient is taken in fp32
outside any loss scaler, so ``meta`` stays an ``OptimWrapper``.
"""
from __future__ import annotations

import copy

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

PARTS = ('supernet', 'meta')
#: the parts of the search constructors (Cream's and K-shot's)
PARTS_ALL = ('supernet', 'meta', 'simplex')
#: optim-wrapper keys that may sit at the top of a multi-part config
SHARED_KEYS = ('type', 'loss_scale', 'dtype')
WRAPPER_TYPES = ('OptimWrapper', 'AmpOptimWrapper',
                 'CPUAmpOptimWrapper')  # the last: --amp without CUDA


def apply_shared(cfg: dict, amp_parts: tuple, constructor: str) -> dict:
    """Move the top-level :data:`SHARED_KEYS` of ``cfg`` into the parts
    ``amp_parts`` (a top-level ``type`` wins: it is what ``--amp`` sets;
    ``loss_scale`` / ``dtype`` fill what a part leaves unset). A part
    outside ``amp_parts`` must stay an ``OptimWrapper``."""
    shared = {k: cfg.pop(k) for k in SHARED_KEYS if k in cfg}
    for name, part in [(n, cfg[n]) for n in cfg if n in PARTS_ALL]:
        if 'type' in shared and name in amp_parts:
            part['type'] = shared['type']
        kind = part.get('type', 'OptimWrapper')
        if kind not in WRAPPER_TYPES:
            raise ValueError(f'optim_wrapper.{name}.type={kind!r}: '
                             f'{constructor} builds '
                             f'{" or ".join(map(repr, WRAPPER_TYPES))}')
        if name not in amp_parts:
            if kind != 'OptimWrapper':
                raise ValueError(
                    f"optim_wrapper.{name}.type={kind!r}: the {name} part "
                    'is trained in fp32 without a loss scaler (its gradient '
                    "is taken outside AMP); use 'OptimWrapper' (--amp "
                    f"applies to {', '.join(map(repr, amp_parts))})")
            continue
        if kind != 'OptimWrapper':  # an AMP wrapper (GPU or CPU)
            for k in ('loss_scale', 'dtype'):
                if k in shared:
                    part.setdefault(k, shared[k])
    return cfg


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class CreamOptimWrapperConstructor:
    """Builds ``OptimWrapperDict(supernet=..., meta=...)`` for CreamSearch;
    each part is an ordinary optim-wrapper config (``paramwise_cfg`` too)."""

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg=None):
        cfg = apply_shared(
            {k: copy.deepcopy(dict(v)) if isinstance(v, dict) else v
             for k, v in dict(optim_wrapper_cfg).items()},
            ('supernet', ), type(self).__name__)
        unknown = set(cfg) - set(PARTS)
        if unknown or 'supernet' not in cfg:
            raise ValueError(f'optim_wrapper: keys {sorted(cfg)}; '
                             f'CreamOptimWrapperConstructor takes '
                             f"'supernet' (required) and 'meta' (and the "
                             f"wrapper keys {', '.join(SHARED_KEYS)}, "
                             'applied to supernet)')
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
