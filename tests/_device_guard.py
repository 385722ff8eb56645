"""A second device without a GPU: the model on PyTorch's ``meta`` device,
with the CUDA placement rule enforced on every op and fake values for what
the host reads back.

Why ``meta``: it is a real second device -- a tensor created by
``torch.zeros(n)`` without ``device=`` lands on the CPU, next to a model that
is elsewhere, exactly the situation of a CUDA run -- and it costs nothing
(no data, no arithmetic). Two gaps make it weaker than CUDA on its own, and
:class:`CudaLikeMeta` (a ``TorchFunctionMode``) closes both:

* the rule. CUDA refuses any op whose tensor arguments lie on the GPU and
  on the CPU, unless each CPU tensor is a 0-dim scalar (the exemptions are
  transfers -- ``to``, ``copy_``, item assignment -- and CPU index tensors).
  Meta kernels check only some ops (``torch.cat``, elementwise ops), not
  ``conv2d``, ``linear`` or ``mm``: a CPU network fed meta batches would
  pass. The mode checks the rule itself, before every op, and raises
  :class:`DeviceMixError` naming the op and the devices.
* the values. A meta tensor has none, so ``.item()``, ``int()``,
  ``float()``, ``bool()``, ``.tolist()``, ``.numpy()``, ``.cpu()`` and a copy
  into a CPU tensor fail. The mode answers each with a fake host value of
  the right shape and dtype (1 / 1.0 / True: ``1 / float(count)`` and
  ``argmax`` stay usable), so the search's host-side control flow runs. The
  numbers are meaningless; what the test sees is only whether every op got
  its tensors on the right device.

Data-dependent shapes (``nonzero``, boolean-mask indexing of a meta tensor)
cannot run on ``meta``: code that needs them on model tensors forces a
device sync on CUDA too and is better written without.
"""
from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

DEVICE = torch.device('meta')

#: ops that may take tensors of both devices under CUDA's rule
_TRANSFERS = {torch.Tensor.to, torch.Tensor.copy_, torch.Tensor.__setitem__,
              torch.Tensor.__getitem__, torch.Tensor.index_select,
              torch.Tensor.new_tensor, torch.as_tensor, torch.tensor,
              torch._has_compatible_shallow_copy_type}
#: attribute setters (``param.data = moved``: ``Module.to`` itself)
_SETTERS = ('__set__', )
#: reads of a device tensor's values by the host (answered with fakes)
_HOST_READS = {torch.Tensor.item, torch.Tensor.__int__,
               torch.Tensor.__float__, torch.Tensor.__bool__,
               torch.Tensor.__index__, torch.Tensor.__format__,
               torch.Tensor.tolist, torch.Tensor.numpy,
               torch.Tensor.__array__}


class DeviceMixError(RuntimeError):
    """One op got tensors on the model's device and on the host."""


def _fake_host(t: torch.Tensor) -> torch.Tensor:
    """A CPU tensor shaped like ``t``: ones (True for bool)."""
    return torch.ones(t.shape, dtype=t.dtype)


def _is_meta(t) -> bool:
    return isinstance(t, torch.Tensor) and t.device.type == 'meta'


class CudaLikeMeta(TorchFunctionMode):
    """See module doc. ``ops`` counts the ops checked (the test asserts the
    mode saw the model's work)."""

    def __init__(self):
        super().__init__()
        self.ops = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        this = args[0] if args else None
        if _is_meta(this):
            if func in _HOST_READS:  # the same read of a fake host copy
                return func(_fake_host(this), *args[1:], **kwargs)
            if func is torch.Tensor.cpu:
                return _fake_host(this)
            if func is torch.Tensor.to:
                device = torch._C._nn._parse_to(*args[1:], **kwargs)[0]
                if device is not None and device.type == 'cpu':
                    dtype = next((a for a in (*args[1:], kwargs.get('dtype'))
                                  if isinstance(a, torch.dtype)), this.dtype)
                    return _fake_host(this).to(dtype)
        if func is torch.Tensor.copy_ and isinstance(this, torch.Tensor) \
                and this.device.type == 'cpu' and _is_meta(args[1]):
            return this.copy_(_fake_host(args[1]).to(this.dtype))
        if func not in _TRANSFERS and \
                getattr(func, '__name__', '') not in _SETTERS:
            self._check(func, args, kwargs)
        self.ops += 1
        return func(*args, **kwargs)

    @staticmethod
    def _check(func, args, kwargs) -> None:
        leaves, _ = tree_flatten((args, kwargs))
        tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
        if not any(_is_meta(t) for t in tensors):
            return
        host = [t for t in tensors if t.device.type == 'cpu' and t.dim()]
        if host:
            name = getattr(func, '__qualname__', None) or repr(func)
            raise DeviceMixError(
                f'{name}: tensors on the model device (meta) and on the host '
                f'(cpu, shape {tuple(host[0].shape)}); CUDA refuses this op')


def on_device(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` moved to the simulated device (its data preprocessor
    included: batches follow it)."""
    return model.to(DEVICE)


def off_host(obj) -> list:
    """Every tensor in a nested structure that is not on the CPU."""
    leaves, _ = tree_flatten(obj)
    return [t for t in leaves
            if isinstance(t, torch.Tensor) and t.device.type != 'cpu']
