"""The only block code of cream_mm.

Every network of the project -- the hypernetwork's candidate ops, the fixed
child networks, the detection backbones -- is built from these classes through
:func:`build_op`. Module and parameter names follow the authors' release
(timm's ``efficientnet_blocks``), so released checkpoints load by prefix only.

Exact definitions (reference README §2, "released models"):

* conv without bias, padding ``(k-1)//2``, BatchNorm with PyTorch defaults,
  Swish (SiLU) activation;
* SE: avg-pool -> 1x1 conv (bias) to ``make_divisible(c*0.25, 8)`` -> ReLU ->
  1x1 conv (bias) -> hard-sigmoid gate ``relu6(x+3)/6``;
* depthwise-separable: dw kxk -> BN -> act -> SE -> pw 1x1 -> BN;
* MBConv: pw 1x1 to ``make_divisible(in*e, 8)`` -> BN -> act -> dw kxk
  (stride) -> BN -> act -> SE -> pw 1x1 -> BN;
* residual bottleneck (Appendix C, Table 9; ResNet [12]): 1x1 -> 3x3 (stride)
  -> 1x1, width ``make_divisible(out/4, 8)``, projection shortcut when the
  shape changes;
* plain conv (Table 10): kxk conv (stride) -> BN -> act.

The residual blocks add the input back when stride is 1 and widths match,
with optional stochastic depth (drop path) on the residual branch. With
``shortcut='pool_conv'`` (AttentiveNAS / OFA, the AlphaNet space) every
DS / MBConv block is residual: the shortcut average-pools by the stride and
projects with a bias-free 1x1 conv when widths differ (no BN); drop path
then applies only where the shortcut is the identity.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmcv.cnn.bricks import DropPath

from ..arch import CONV_OPS, MBCONV_OPS, RES_OPS, SKIP, op_kernel_expansion

DEFAULT_NORM = dict(type='BN', momentum=0.1, eps=1e-5)
DEFAULT_ACT = dict(type='SiLU')
SE_RATIO = 0.25


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None
                   ) -> int:
    """Round ``v`` to a multiple of ``divisor`` (never below 90% of ``v``)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
          bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups,
                     bias=bias)


def _norm(cfg: dict, c: int) -> nn.Module:
    return build_norm_layer(cfg, c)[1]


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with a hard-sigmoid gate."""

    def __init__(self, channels: int, se_ratio: float = SE_RATIO):
        super().__init__()
        reduced = make_divisible(channels * se_ratio, 8)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act1 = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.conv_expand(self.act1(self.conv_reduce(s)))
        return x * F.hardsigmoid(s)


SHORTCUTS = ('identity', 'pool_conv')


class PoolConvShortcut(nn.Module):
    """AttentiveNAS's shortcut (``ShortcutLayer``): average pool by the
    stride (padding 1 on odd sizes), then a bias-free 1x1 conv when the
    widths differ."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        if in_channels != out_channels:
            self.conv = _conv(in_channels, out_channels, 1)

    def forward(self, x):
        if self.stride > 1:
            x = F.avg_pool2d(x, self.stride, padding=x.size(-1) % 2)
        return self.conv(x) if hasattr(self, 'conv') else x


class _Residual(nn.Module):
    """Adds the identity when shapes allow; drop path on the branch."""

    def _init_residual(self, cin, cout, stride, drop_path_rate,
                       shortcut='identity'):
        if shortcut not in SHORTCUTS:
            raise ValueError(f'shortcut={shortcut!r}; allowed: '
                             f'{", ".join(SHORTCUTS)}')
        identity = stride == 1 and cin == cout
        self.has_residual = identity or shortcut == 'pool_conv'
        self.drop_path = (DropPath(drop_path_rate)
                          if drop_path_rate > 0 and identity
                          else nn.Identity())
        if not identity and shortcut == 'pool_conv':
            self.shortcut = PoolConvShortcut(cin, cout, stride)

    def _add(self, x, out):
        if not self.has_residual:
            return out
        if hasattr(self, 'shortcut'):
            x = self.shortcut(x)
        return x + self.drop_path(out)


class DepthwiseSeparable(_Residual):
    """dw kxk -> BN -> act -> SE -> pw 1x1 -> BN (MobileNet's DS block)."""
    conv_bn_pairs = (('conv_dw', 'bn1'), ('conv_pw', 'bn2'))

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1,
                 se_ratio=SE_RATIO, norm_cfg=DEFAULT_NORM,
                 act_cfg=DEFAULT_ACT, drop_path_rate=0.,
                 shortcut='identity'):
        super().__init__()
        self._init_residual(in_channels, out_channels, stride, drop_path_rate,
                            shortcut)
        self.conv_dw = _conv(in_channels, in_channels, kernel_size, stride,
                             groups=in_channels)
        self.bn1 = _norm(norm_cfg, in_channels)
        self.act1 = build_activation_layer(act_cfg)
        self.se = SqueezeExcite(in_channels, se_ratio) if se_ratio else \
            nn.Identity()
        self.conv_pw = _conv(in_channels, out_channels, 1)
        self.bn2 = _norm(norm_cfg, out_channels)

    def forward(self, x):
        out = self.se(self.act1(self.bn1(self.conv_dw(x))))
        return self._add(x, self.bn2(self.conv_pw(out)))


class InvertedResidual(_Residual):
    """MBConv with SE (MobileNetV2 [11] + SE [21]), expansion e, kernel k."""
    conv_bn_pairs = (('conv_pw', 'bn1'), ('conv_dw', 'bn2'),
                     ('conv_pwl', 'bn3'))

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1,
                 expand_ratio=6, se_ratio=SE_RATIO, norm_cfg=DEFAULT_NORM,
                 act_cfg=DEFAULT_ACT, drop_path_rate=0.,
                 shortcut='identity'):
        super().__init__()
        self._init_residual(in_channels, out_channels, stride, drop_path_rate,
                            shortcut)
        mid = make_divisible(in_channels * expand_ratio, 8)
        self.conv_pw = _conv(in_channels, mid, 1)
        self.bn1 = _norm(norm_cfg, mid)
        self.act1 = build_activation_layer(act_cfg)
        self.conv_dw = _conv(mid, mid, kernel_size, stride, groups=mid)
        self.bn2 = _norm(norm_cfg, mid)
        self.act2 = build_activation_layer(act_cfg)
        self.se = SqueezeExcite(mid, se_ratio) if se_ratio else nn.Identity()
        self.conv_pwl = _conv(mid, out_channels, 1)
        self.bn3 = _norm(norm_cfg, out_channels)

    def forward(self, x):
        out = self.act1(self.bn1(self.conv_pw(x)))
        out = self.se(self.act2(self.bn2(self.conv_dw(out))))
        return self._add(x, self.bn3(self.conv_pwl(out)))


class ResidualBottleneck(nn.Module):
    """ResNet bottleneck [12] with a 3x3 middle conv (Appendix C, Table 9)."""
    conv_bn_pairs = (('conv1', 'bn1'), ('conv2', 'bn2'), ('conv3', 'bn3'),
                     ('downsample.0', 'downsample.1'))

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1,
                 norm_cfg=DEFAULT_NORM, act_cfg=DEFAULT_ACT,
                 drop_path_rate=0.):
        super().__init__()
        mid = make_divisible(out_channels / 4, 8)
        self.conv1 = _conv(in_channels, mid, 1)
        self.bn1 = _norm(norm_cfg, mid)
        self.conv2 = _conv(mid, mid, kernel_size, stride)
        self.bn2 = _norm(norm_cfg, mid)
        self.conv3 = _conv(mid, out_channels, 1)
        self.bn3 = _norm(norm_cfg, out_channels)
        self.act = build_activation_layer(act_cfg)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                _conv(in_channels, out_channels, 1, stride),
                _norm(norm_cfg, out_channels))
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 \
            else nn.Identity()

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.act(identity + self.drop_path(out))


class ConvBnAct(nn.Module):
    """Plain kxk conv -> BN -> act (Table 10's "Conv"; the release's tail)."""
    conv_bn_pairs = (('conv', 'bn1'), )

    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1,
                 norm_cfg=DEFAULT_NORM, act_cfg=DEFAULT_ACT,
                 drop_path_rate=0.):
        super().__init__()
        self.conv = _conv(in_channels, out_channels, kernel_size, stride)
        self.bn1 = _norm(norm_cfg, out_channels)
        self.act1 = build_activation_layer(act_cfg)

    def forward(self, x):
        return self.act1(self.bn1(self.conv(x)))


def build_op(op: str, in_channels: int, out_channels: int, stride: int = 1,
             **kwargs) -> nn.Module:
    """Build the block of an op name of :mod:`cream_mm.arch`.

    ``kwargs`` (norm_cfg, act_cfg, drop_path_rate, se_ratio) go to the block.
    """
    if op in MBCONV_OPS:
        k, e = op_kernel_expansion(op)
        return InvertedResidual(in_channels, out_channels, k, stride, e,
                                **kwargs)
    if op == SKIP:
        if stride != 1 or in_channels != out_channels:
            raise ValueError(f'op "skip" needs stride 1 and equal widths, got '
                             f'stride {stride}, {in_channels}->'
                             f'{out_channels}')
        return nn.Identity()
    kwargs.pop('se_ratio', None)
    if op in RES_OPS:
        return ResidualBottleneck(in_channels, out_channels, 3, stride,
                                  **kwargs)
    if op in CONV_OPS:
        return ConvBnAct(in_channels, out_channels, int(op[4:]), stride,
                         **kwargs)
    raise ValueError(f'unknown op {op!r}; allowed: '
                     f'{", ".join(MBCONV_OPS + (SKIP, ) + RES_OPS + CONV_OPS)}')
