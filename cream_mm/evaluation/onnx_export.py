"""ONNX export of a Cream classifier or detection backbone, verified.

The exported graph is run with onnxruntime on the same random input and
compared with PyTorch; a difference above ``atol`` is an error, so an export
that "succeeds" but computes something else never goes unnoticed.
"""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
import torch
import torch.nn as nn


class _TupleOut(nn.Module):
    """Backbones return tuples; ONNX wants named outputs."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return tuple(self.backbone(x))


def export_onnx(model: nn.Module, size: int | tuple[int, int], path: str,
                atol: float = 1e-4, opset: int = 17) -> dict:
    """Export ``model`` (eval) for ``1x3xHxW`` input and check with ORT.

    Returns ``dict(path, outputs, max_abs_diff)``. The batch axis is dynamic.
    """
    import onnxruntime as ort
    h, w = (size, size) if isinstance(size, int) else size
    model = model.eval()
    x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x)
    refs = list(ref) if isinstance(ref, (tuple, list)) else [ref]
    if isinstance(ref, (tuple, list)):
        model = _TupleOut(model) if not isinstance(model, _TupleOut) else model
    names = [f'out{i}' for i in range(len(refs))] if len(refs) > 1 else [
        'output']
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    torch.onnx.export(model, (x, ), tmp, dynamo=False, opset_version=opset,
                      input_names=['input'], output_names=names,
                      dynamic_axes={'input': {0: 'batch'},
                                    **{n: {0: 'batch'} for n in names}})
    sess = ort.InferenceSession(tmp, providers=['CPUExecutionProvider'])
    outs = sess.run(None, {'input': x.numpy()})
    diff = max(float(np.abs(o - r.numpy()).max()) for o, r in zip(outs, refs))
    if diff > atol:
        os.remove(tmp)
        raise RuntimeError(f'ONNX output differs from PyTorch by {diff:.2e} '
                           f'(> atol {atol}); nothing written to {path}')
    os.replace(tmp, path)
    return dict(path=path, outputs=[tuple(o.shape) for o in outs],
                max_abs_diff=diff)
