"""Build the :class:`~cream_mm.search.protocol.SubnetSampler` of a supernet.

Algorithms (Cream, the sandwich rule, K-shot) call :func:`build_sampler`
with their supernet; each space registers how its sampler is made
(:func:`register_sampler`), so an algorithm never names a space.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch.nn as nn

SAMPLER_BUILDERS: dict[type, Callable] = {}


def register_sampler(supernet_cls: type):
    """Decorator: ``fn(supernet, num_classes, flops_range, flops_metric,
    **kwargs) -> SubnetSampler`` builds samplers for ``supernet_cls``."""
    def deco(fn):
        SAMPLER_BUILDERS[supernet_cls] = fn
        return fn
    return deco


def build_sampler(supernet: nn.Module, num_classes: int,
                  flops_range: Sequence[float | None] = (None, None),
                  flops_metric: str = 'flops', **kwargs):
    """The sampler of ``supernet``'s space (``kwargs``: sampler options,
    e.g. ``seed``, ``op_prior``)."""
    for cls in type(supernet).__mro__:
        if cls in SAMPLER_BUILDERS:
            return SAMPLER_BUILDERS[cls](supernet, num_classes, flops_range,
                                         flops_metric, **kwargs)
    raise TypeError(f'supernet type {type(supernet).__name__}: no sampler '
                    f'registered; known: '
                    f'{", ".join(c.__name__ for c in SAMPLER_BUILDERS)}')


def _cream_sampler(supernet, num_classes, flops_range, flops_metric,
                   **kwargs):
    from .flops_table import FlopsTable
    from .sampler import PathSampler
    table = FlopsTable(supernet.space, flops_metric, num_classes)
    return PathSampler(supernet.space, table, flops_range, **kwargs)


def _register_builtin():
    from ..models.supernet import CreamSupernet
    register_sampler(CreamSupernet)(_cream_sampler)


_register_builtin()
