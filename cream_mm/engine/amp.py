"""Mixed precision on a machine without an accelerator.

mmengine's ``AmpOptimWrapper`` asserts a GPU (NPU, MLU, MUSA) and takes
``torch.cuda``'s GradScaler. :class:`CPUAmpOptimWrapper` is the same wrapper
with torch's CPU GradScaler and bfloat16 autocast (mmengine's ``autocast``
picks the CPU when no GPU is there): ``tools/train.py --amp`` uses it where
CUDA is absent, so the AMP code paths of every config (loss scaling,
unscaled gradients, fp32 regions) run, and are tested, on CPU. Its numbers
are bfloat16 ones, not a measurement of fp16 on a GPU.
"""
from __future__ import annotations

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

#: the --amp wrapper type of each kind of machine
AMP_TYPES = ('AmpOptimWrapper', 'CPUAmpOptimWrapper')


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` on CPU: bfloat16 autocast (``dtype``, default
    bfloat16; float16 autocast is not supported on CPU) and
    ``torch.amp.GradScaler('cpu')`` (``loss_scale``: ``'dynamic'``, a float
    or the scaler's arguments, as ``AmpOptimWrapper``)."""

    def __init__(self, loss_scale='dynamic', dtype='bfloat16', **kwargs):
        OptimWrapper.__init__(self, **kwargs)  # skips the GPU assertion
        self._scale_update_param = None
        if isinstance(dtype, str):
            if dtype not in self.valid_dtypes:
                raise ValueError(f'optim_wrapper.dtype={dtype!r}: allowed '
                                 f'{", ".join(self.valid_dtypes)}')
            dtype = getattr(torch, dtype)
        self.cast_dtype = dtype
        if loss_scale == 'dynamic':
            self.loss_scaler = torch.amp.GradScaler('cpu')
        elif isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            self.loss_scaler = torch.amp.GradScaler('cpu',
                                                    init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            self.loss_scaler = torch.amp.GradScaler('cpu', **loss_scale)
        else:
            raise TypeError("optim_wrapper.loss_scale: 'dynamic', a float or "
                            f'a dict, got {loss_scale!r}')
