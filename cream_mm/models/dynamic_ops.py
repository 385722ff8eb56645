"""Weight-sliced ("dynamic") versions of the blocks of
:mod:`cream_mm.models.blocks` for the AttentiveNAS supernet.

Each dynamic block owns modules with the *same names* as its fixed
counterpart (``conv_pw``, ``bn1``, ``se.conv_reduce``, ``shortcut.conv``,
...) at the largest size of the space, and its forward reads the active
slice of their parameters at call time (``F.conv2d(x, conv.weight[:o, :i,
crop, crop])``), as OFA / AttentiveNAS's dynamic ops do:

* channels: the leftmost ``c`` filters / inputs;
* kernel: the centre ``k x k`` crop of the largest kernel (AttentiveNAS's
  ``KERNEL_TRANSFORM_MODE = None``);
* BatchNorm: ``weight[:c]``, ``bias[:c]`` and views ``running_mean[:c]``,
  ``running_var[:c]`` of the full buffers, so a training forward updates
  exactly the active part of the running statistics (and momentum ``None``
  averages cumulatively, as :func:`~cream_mm.evaluation.ranking.
  recalibrate_bn` needs).

Nothing is cached, so ``torch.func.functional_call`` with other parameters
(K-shot's merged weights) works.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmcv.cnn.bricks.drop import drop_path

from .blocks import SE_RATIO, _conv, make_divisible


def sliced_conv(conv: nn.Conv2d, x: torch.Tensor, cout: int,
                kernel: int | None = None) -> torch.Tensor:
    """``conv`` restricted to ``x``'s channels, ``cout`` outputs and the
    centre ``kernel x kernel`` crop; depthwise when ``conv`` is."""
    cin = x.shape[1]
    w = conv.weight
    big = w.shape[-1]
    k = big if kernel is None else kernel
    s = (big - k) // 2
    if conv.groups > 1:  # depthwise: one filter per input channel
        w, groups = w[:cin, :, s:s + k, s:s + k], cin
    else:
        w, groups = w[:cout, :cin, s:s + k, s:s + k], 1
    b = conv.bias[:cout] if conv.bias is not None else None
    return F.conv2d(x, w, b, conv.stride, (k - 1) // 2, 1, groups)


def sliced_bn(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``nn.BatchNorm2d.forward`` on the first ``x.shape[1]`` channels,
    running statistics updated in place through views."""
    c = x.shape[1]
    factor = 0. if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and \
            bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = (1. / float(bn.num_batches_tracked) if bn.momentum is None
                  else bn.momentum)
    use_batch = bn.training or bn.running_mean is None
    mean = bn.running_mean[:c] if bn.running_mean is not None else None
    var = bn.running_var[:c] if bn.running_var is not None else None
    track = not bn.training or bn.track_running_stats
    return F.batch_norm(x, mean if track else None, var if track else None,
                        bn.weight[:c] if bn.weight is not None else None,
                        bn.bias[:c] if bn.bias is not None else None,
                        use_batch, factor, bn.eps)


class DynamicSE(nn.Module):
    """:class:`~cream_mm.models.blocks.SqueezeExcite`, sliced: reduced width
    ``make_divisible(c * 0.25, 8)`` of the active ``c``."""

    def __init__(self, channels: int):
        super().__init__()
        reduced = make_divisible(channels * SE_RATIO, 8)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act1 = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x):
        c = x.shape[1]
        s = x.mean((2, 3), keepdim=True)
        s = self.act1(sliced_conv(self.conv_reduce, s,
                                  make_divisible(c * SE_RATIO, 8)))
        return x * F.hardsigmoid(sliced_conv(self.conv_expand, s, c))


class DynamicShortcut(nn.Module):
    """Sliced :class:`~cream_mm.models.blocks.PoolConvShortcut` (``conv``
    at the largest widths; skipped when the active widths match)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = _conv(in_channels, out_channels, 1)

    def forward(self, x, cout):
        cin = x.shape[1]
        if self.stride > 1:
            x = F.avg_pool2d(x, self.stride, padding=x.size(-1) % 2)
        return sliced_conv(self.conv, x, cout) if cin != cout else x


class _DynamicResidual(nn.Module):
    """Residual add; drop path (AlphaNet's drop_connect, rate set by
    :meth:`AttentiveSupernet.set_drop_path`) only on identity shortcuts."""
    drop_path_rate = 0.

    def _init_shortcut(self, max_in, max_out, stride, needs_conv):
        self.stride = stride
        if needs_conv or stride > 1:
            self.shortcut = DynamicShortcut(max_in, max_out, stride)

    def _add(self, x, out):
        cout = out.shape[1]
        if self.stride == 1 and x.shape[1] == cout:
            if self.drop_path_rate > 0:
                out = drop_path(out, self.drop_path_rate, self.training)
            return x + out
        return self.shortcut(x, cout) + out


class DynamicConvBnAct(nn.Module):
    """Sliced :class:`~cream_mm.models.blocks.ConvBnAct`."""

    def __init__(self, max_in, max_out, kernel_size, stride, norm_cfg,
                 act_cfg):
        super().__init__()
        self.conv = _conv(max_in, max_out, kernel_size, stride)
        self.bn1 = build_norm_layer(norm_cfg, max_out)[1]
        self.act1 = build_activation_layer(act_cfg)

    def forward(self, x, cout):
        return self.act1(sliced_bn(self.bn1, sliced_conv(self.conv, x, cout)))


class DynamicDepthwiseSeparable(_DynamicResidual):
    """Sliced :class:`~cream_mm.models.blocks.DepthwiseSeparable` with the
    ``pool_conv`` shortcut (AttentiveNAS's mb1: expand 1)."""

    def __init__(self, max_in, max_out, max_kernel, stride, se, norm_cfg,
                 act_cfg, needs_shortcut_conv):
        super().__init__()
        self._init_shortcut(max_in, max_out, stride, needs_shortcut_conv)
        self.conv_dw = _conv(max_in, max_in, max_kernel, stride,
                             groups=max_in)
        self.bn1 = build_norm_layer(norm_cfg, max_in)[1]
        self.act1 = build_activation_layer(act_cfg)
        self.se = DynamicSE(max_in) if se else nn.Identity()
        self.conv_pw = _conv(max_in, max_out, 1)
        self.bn2 = build_norm_layer(norm_cfg, max_out)[1]

    def forward(self, x, cout, kernel, expand=1):
        out = sliced_conv(self.conv_dw, x, x.shape[1], kernel)
        out = self.se(self.act1(sliced_bn(self.bn1, out)))
        out = sliced_bn(self.bn2, sliced_conv(self.conv_pw, out, cout))
        return self._add(x, out)


class DynamicInvertedResidual(_DynamicResidual):
    """Sliced :class:`~cream_mm.models.blocks.InvertedResidual` with the
    ``pool_conv`` shortcut; hidden width ``make_divisible(cin * e, 8)``."""

    def __init__(self, max_in, max_out, max_kernel, max_expand, stride, se,
                 norm_cfg, act_cfg, needs_shortcut_conv):
        super().__init__()
        self._init_shortcut(max_in, max_out, stride, needs_shortcut_conv)
        mid = make_divisible(max_in * max_expand, 8)
        self.conv_pw = _conv(max_in, mid, 1)
        self.bn1 = build_norm_layer(norm_cfg, mid)[1]
        self.act1 = build_activation_layer(act_cfg)
        self.conv_dw = _conv(mid, mid, max_kernel, stride, groups=mid)
        self.bn2 = build_norm_layer(norm_cfg, mid)[1]
        self.act2 = build_activation_layer(act_cfg)
        self.se = DynamicSE(mid) if se else nn.Identity()
        self.conv_pwl = _conv(mid, max_out, 1)
        self.bn3 = build_norm_layer(norm_cfg, max_out)[1]

    def forward(self, x, cout, kernel, expand):
        mid = make_divisible(x.shape[1] * expand, 8)
        out = self.act1(sliced_bn(self.bn1, sliced_conv(self.conv_pw, x, mid)))
        out = self.act2(sliced_bn(self.bn2,
                                  sliced_conv(self.conv_dw, out, mid, kernel)))
        out = sliced_bn(self.bn3, sliced_conv(self.conv_pwl, self.se(out),
                                              cout))
        return self._add(x, out)
