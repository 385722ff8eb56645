"""Small runtime helpers of the search: BN in batch-statistics mode and
cross-rank reductions that keep every rank's search state identical."""
from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Iterable

import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath
from mmengine import dist
from torch.nn.modules.batchnorm import _BatchNorm


_STOCHASTIC = (nn.Dropout, DropPath)
_CACHE: 'weakref.WeakKeyDictionary[nn.Module, tuple]' = \
    weakref.WeakKeyDictionary()


def _mode_modules(model: nn.Module) -> tuple[list, list]:
    """BatchNorm and stochastic (dropout, drop path) modules, cached."""
    if model not in _CACHE:
        mods = list(model.modules())
        _CACHE[model] = ([m for m in mods if isinstance(m, _BatchNorm)
                          and m.track_running_stats],
                         [m for m in mods if isinstance(m, _STOCHASTIC)])
    return _CACHE[model]


@contextmanager
def bn_batch_stats(model: nn.Module):
    """Evaluate without dropout / drop path and with BatchNorm on batch
    statistics, leaving running statistics untouched.

    Used for every auxiliary forward of the search (teacher, board paths,
    validation scoring, Eq. 6's simulated step): the running statistics of
    a hypernetwork mix all paths, batch statistics are those of the path.
    """
    bns, stochastic = _mode_modules(model)
    saved = [(m, m.running_mean, m.running_var) for m in bns]
    modes = [(m, m.training) for m in stochastic]
    for m in bns:
        m.running_mean = m.running_var = None
    for m in stochastic:
        m.training = False
    try:
        yield
    finally:
        for m, mean, var in saved:
            m.running_mean, m.running_var = mean, var
        for m, mode in modes:
            m.training = mode


def distributed() -> bool:
    return dist.is_distributed() and dist.get_world_size() > 1


def all_reduce_mean(tensors: Iterable[torch.Tensor]) -> None:
    """In-place mean over ranks of a list of tensors (one flat all-reduce)."""
    tensors = [t for t in tensors if t is not None]
    if not distributed() or not tensors:
        return
    flat = torch.cat([t.reshape(-1).to(torch.float64) for t in tensors])
    dist.all_reduce(flat, op='sum')
    flat /= dist.get_world_size()
    k = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[k:k + n].view_as(t).to(t.dtype))
        k += n


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if distributed():
        dist.all_reduce(t, op='sum')
    return t


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy parameters, buffers and generator states of rank ``src``."""
    if not distributed():
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src)
    for m in module.modules():
        gen = getattr(m, 'generator', None)
        if isinstance(gen, torch.Generator):
            state = gen.get_state()
            dist.broadcast(state, src)
            gen.set_state(state)
