"""Small runtime helpers of the search: BN in batch-statistics mode and
cross-rank reductions that keep every rank's search state identical."""
from __future__ import annotations

import weakref
import hashlib
from contextlib import contextmanager
from typing import Iterable, Mapping

import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath
from mmengine import dist
from mmengine.dist import dist as _mmdist
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
    acts = _activations(model) if not torch.is_grad_enabled() else []
    # the module dicts are written directly: nn.Module.__setattr__ costs
    # ~4 ms per call over the ~600 BatchNorms of a supernet, a sizeable
    # part of a small no-grad forward (same attributes, same effect)
    saved = [(m._buffers, m._buffers['running_mean'],
              m._buffers['running_var']) for m in bns]
    modes = [(m.__dict__, m.training) for m in stochastic]
    inplace = [(m.__dict__, m.inplace) for m in acts]
    for buffers, _, _ in saved:
        buffers['running_mean'] = buffers['running_var'] = None
    for attrs, _ in modes:
        attrs['training'] = False
    for attrs, _ in inplace:  # no autograd: activations may overwrite input
        attrs['inplace'] = True
    try:
        yield
    finally:
        for buffers, mean, var in saved:
            buffers['running_mean'], buffers['running_var'] = mean, var
        for attrs, mode in modes:
            attrs['training'] = mode
        for attrs, flag in inplace:
            attrs['inplace'] = flag


_ACTS = (nn.SiLU, nn.ReLU, nn.Hardswish, nn.ReLU6)
_ACT_CACHE: 'weakref.WeakKeyDictionary[nn.Module, list]' = \
    weakref.WeakKeyDictionary()


def _activations(model: nn.Module) -> list:
    """Activation modules with an ``inplace`` switch, cached. In the Cream
    blocks every activation's input is a fresh BN / conv / sum output used
    nowhere else, so in-place evaluation gives the same values."""
    if model not in _ACT_CACHE:
        _ACT_CACHE[model] = [m for m in model.modules()
                             if isinstance(m, _ACTS)]
    return _ACT_CACHE[model]


def distributed() -> bool:
    return dist.is_distributed() and dist.get_world_size() > 1


#: bytes per all-reduce of :func:`all_reduce_mean` / :class:`GradMeanHooks`
#: (torch DDP's default bucket size)
BUCKET_BYTES = 25 * 2 ** 20


def _buckets(tensors: list, cap: int) -> list[list]:
    """Consecutive runs of tensors of one dtype and device, each of at most
    ``cap`` bytes (a larger tensor is a bucket of its own)."""
    out: list = []
    size = 0
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        if not out or t.dtype != out[-1][0].dtype or \
                t.device != out[-1][0].device or size + nbytes > cap:
            out.append([])
            size = 0
        out[-1].append(t)
        size += nbytes
    return out


def _launch(tensors: list):
    """Flat copy of ``tensors`` on the backend's device (NCCL: the GPU,
    whatever device the tensors are on) and its asynchronous all-reduce
    (sum); :func:`_finish` copies the mean back to each tensor's device."""
    flat = torch.cat([t.reshape(-1) for t in tensors])
    device = _mmdist.get_comm_device()
    if flat.device != device:
        flat = flat.to(device)
    return flat, _mmdist.torch_dist.all_reduce(flat, async_op=True)


def _finish(tensors: list, flat: torch.Tensor, work) -> None:
    work.wait()
    flat /= dist.get_world_size()
    k = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[k:k + n].view_as(t))
        k += n


def all_reduce_mean(tensors: Iterable[torch.Tensor],
                    bucket_bytes: int | None = None) -> None:
    """In-place mean over ranks of a list of tensors, each in its own dtype
    and on its own device (NCCL: the model's), in buckets of
    ``bucket_bytes`` (default :data:`BUCKET_BYTES`) whose all-reduces are in
    flight together. Every rank receives the same bytes."""
    tensors = [t for t in tensors if t is not None]
    if not distributed() or not tensors:
        return
    cap = BUCKET_BYTES if bucket_bytes is None else int(bucket_bytes)
    pending = [(b, *_launch(b)) for b in _buckets(tensors, cap)]
    for bucket, flat, work in pending:
        _finish(bucket, flat, work)


class GradMeanHooks:
    """Gradient averaging over ranks that overlaps the backward pass (the
    bucketed scheme of torch's DDP, for algorithms that run their own
    backward passes): buckets of :data:`BUCKET_BYTES` over ``params`` in
    reverse order; a bucket's all-reduce starts as soon as the backward has
    accumulated every gradient in it, buckets start in a fixed order (the
    same collectives on every rank), :meth:`finish` starts the rest
    (parameters the backward did not reach) and waits.

    ::

        hooks = GradMeanHooks(params)   # before the (last) backward
        loss.backward()
        hooks.finish()                  # p.grad: the mean over ranks

    Without a distributed run it does nothing. Every gradient of ``params``
    must be final when its hook fires (the last backward pass of the step).
    """

    def __init__(self, params: Iterable[torch.Tensor],
                 bucket_bytes: int | None = None):
        self.active = distributed()
        if not self.active:
            return
        params = [p for p in params if p.requires_grad][::-1]
        cap = BUCKET_BYTES if bucket_bytes is None else int(bucket_bytes)
        self.buckets = _buckets(params, cap)
        where = {id(p): i for i, b in enumerate(self.buckets) for p in b}
        self.left = [len(b) for b in self.buckets]
        self.next, self.pending = 0, []
        self.handles = [p.register_post_accumulate_grad_hook(
            lambda p, i=where[id(p)]: self._ready(i)) for p in params]

    def _ready(self, i: int) -> None:
        self.left[i] -= 1
        while self.next < len(self.buckets) and not self.left[self.next]:
            self._start(self.next)

    def _start(self, i: int) -> None:
        grads = [p.grad for p in self.buckets[i] if p.grad is not None]
        if grads:
            self.pending.append((grads, *_launch(grads)))
        self.next = i + 1

    def finish(self) -> None:
        if not self.active:
            return
        for h in self.handles:
            h.remove()
        while self.next < len(self.buckets):
            self._start(self.next)
        for grads, flat, work in self.pending:
            _finish(grads, flat, work)
        self.pending = []


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if distributed():
        dist.all_reduce(t, op='sum')
    return t


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy parameters, buffers, generator states and host-side state
    (a module's ``broadcast_host_state(src)``, e.g. the board) of rank
    ``src``.
    mmengine's collectives move CPU tensors to the backend's device (CUDA
    under NCCL) and back."""
    if not distributed():
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src)
    for m in module.modules():
        if callable(getattr(m, 'broadcast_host_state', None)):
            m.broadcast_host_state(src)
        gen = getattr(m, 'generator', None)
        if isinstance(gen, torch.Generator):
            state = gen.get_state()
            dist.broadcast(state, src)
            gen.set_state(state)


def to_cpu(obj):
    """``obj`` (tensors in nested dicts / lists / tuples) with every tensor
    detached and on the host: what artefacts are saved as, so a file written
    on a GPU loads anywhere."""
    from torch.utils._pytree import tree_map
    return tree_map(lambda t: t.detach().cpu() if isinstance(t, torch.Tensor)
                    else t, obj)


def tensor_digest(tensors: Iterable[torch.Tensor]) -> str:
    """SHA-1 of the bytes (and shapes, dtypes) of tensors, in order."""
    h = hashlib.sha1()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f'{tuple(t.shape)}{t.dtype}'.encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes()
                 if t.numel() else b'')
    return h.hexdigest()[:16]


def _state_tensors(obj, out: list) -> list:
    """Tensors of a nested optimiser state in a deterministic order."""
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, Mapping):
        for k in sorted(obj, key=str):
            _state_tensors(obj[k], out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _state_tensors(v, out)
    elif isinstance(obj, (int, float, bool)) or obj is None:
        out.append(torch.tensor(float('nan') if obj is None else obj,
                                dtype=torch.float64))
    return out


def search_state_digest(model: nn.Module, optim_wrapper=None
                        ) -> dict[str, str]:
    """Fingerprints of every part of a search's state: ``supernet``
    (backbone + head parameters), ``bn`` (their buffers), ``board``,
    ``meta`` (meta network), ``sampler`` (generator state), ``counters``
    and, given the optimiser wrapper(s), ``optim`` -- equal digests on two
    ranks (or two runs) mean bit-identical state."""
    net = [model.backbone, model.head]
    board = getattr(model, 'board', None)  # Cream only
    meta = getattr(model, 'meta_net', None)
    out = dict(
        supernet=tensor_digest(p for m in net for p in m.parameters()),
        bn=tensor_digest(b for m in net for b in m.buffers()),
        board=tensor_digest(board.state_tensors().values()
                            if board is not None else []),
        meta=tensor_digest(meta.parameters() if meta is not None else []),
        sampler=tensor_digest([model.sampler.generator.get_state()]),
        counters=tensor_digest([getattr(model, n) for n in (
            'iter', 'distill_steps', 'meta_steps', 'acc_stats', 'gap_stats')
            if hasattr(model, n)]))
    if optim_wrapper is not None:
        out['optim'] = tensor_digest(_state_tensors(
            optim_wrapper.state_dict(), []))
    return out
