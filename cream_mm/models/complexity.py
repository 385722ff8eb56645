"""FLOPs and parameters of Cream architectures, per layer and per path.

Two conventions are reported, always labelled:

* ``macs``: pure multiply-adds of convolutions and fully-connected layers;
* ``flops`` ("paper"): what the 2020 ``thop`` release (0.0.31) counted on the
  authors' code, the numbers in the paper's tables -- conv MACs plus one op
  per output element for a bias, BatchNorm at 2 ops per element, adaptive
  average pooling at ``H*W + 1`` ops per output element (the SE squeeze and
  the global pool), FC MACs without bias; activations, gates and additions
  count 0.

Counts are analytic (closed form per layer), so the cost of one layer
depends only on its op, widths, stride and input size. The hypernetwork's
look-up table (search issue) is a cache of :func:`layer_cost`, and
:func:`arch_cost` sums the same function: both agree by construction, and the
tests pin them to the paper's numbers and to mmengine's traced counter.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..arch import CONV_OPS, MBCONV_OPS, RES_OPS, SKIP, parse_arch
from .blocks import SE_RATIO, make_divisible
from .cream_net import (STAGE_CHANNELS, STAGE_STRIDES, STEM_CHANNELS,
                        TAIL_CHANNELS, searched_layers)

HEAD_CHANNELS = 1280


@dataclass(frozen=True)
class Cost:
    """Multiply-adds, paper-style FLOPs and parameters (plain ints)."""
    macs: int = 0
    flops: int = 0
    params: int = 0

    def __add__(self, other: 'Cost') -> 'Cost':
        return Cost(self.macs + other.macs, self.flops + other.flops,
                    self.params + other.params)

    def as_dict(self) -> dict:
        return dict(macs=self.macs, flops=self.flops, params=self.params)


def _out(size: int, k: int, stride: int) -> int:
    p = (k - 1) // 2
    return (size + 2 * p - k) // stride + 1


def conv(cin, cout, k, stride, hw, groups=1, bias=False):
    """Cost of a conv and its output size (padding (k-1)//2)."""
    h, w = _out(hw[0], k, stride), _out(hw[1], k, stride)
    macs = h * w * cout * (cin // groups) * k * k
    extra = h * w * cout if bias else 0
    params = cout * (cin // groups) * k * k + (cout if bias else 0)
    return Cost(macs, macs + extra, params), (h, w)


def bn(c, hw) -> Cost:
    return Cost(0, 2 * c * hw[0] * hw[1], 2 * c)


def pool(c, hw) -> Cost:
    """Adaptive average pool to 1x1: ``H*W + 1`` ops per output element."""
    return Cost(0, c * (hw[0] * hw[1] + 1), 0)


def se(c, hw) -> Cost:
    r = make_divisible(c * SE_RATIO, 8)
    return (pool(c, hw) + conv(c, r, 1, 1, (1, 1), bias=True)[0]
            + conv(r, c, 1, 1, (1, 1), bias=True)[0])


def _conv_bn(cin, cout, k, stride, hw, groups=1):
    cost, hw2 = conv(cin, cout, k, stride, hw, groups)
    return cost + bn(cout, hw2), hw2


@lru_cache(maxsize=None)
def layer_cost(op: str, cin: int, cout: int, stride: int,
               hw: tuple[int, int]) -> tuple[Cost, tuple[int, int]]:
    """Cost of one block of :func:`cream_mm.models.blocks.build_op`.

    Returns ``(cost, output_hw)``. Cached: this *is* the per-layer table.
    """
    if op == SKIP:
        return Cost(), hw
    if op in MBCONV_OPS:
        mid = make_divisible(cin * int(op[3]), 8)
        c1, hw1 = _conv_bn(cin, mid, 1, 1, hw)
        c2, hw2 = _conv_bn(mid, mid, int(op[1]), stride, hw1, groups=mid)
        c3, hw3 = _conv_bn(mid, cout, 1, 1, hw2)
        return c1 + c2 + se(mid, hw2) + c3, hw3
    if op in RES_OPS:
        mid = make_divisible(cout / 4, 8)
        c1, hw1 = _conv_bn(cin, mid, 1, 1, hw)
        c2, hw2 = _conv_bn(mid, mid, 3, stride, hw1)
        c3, hw3 = _conv_bn(mid, cout, 1, 1, hw2)
        total = c1 + c2 + c3
        if stride != 1 or cin != cout:
            total = total + _conv_bn(cin, cout, 1, stride, hw)[0]
        return total, hw3
    if op in CONV_OPS:
        return _conv_bn(cin, cout, int(op[4:]), stride, hw)
    raise ValueError(f'unknown op {op!r}')


def stem_cost(hw, in_channels=3):
    """conv_stem + bn1, then the depthwise-separable ``blocks.0``."""
    c1, hw1 = _conv_bn(in_channels, STEM_CHANNELS, 3, 2, hw)
    c2, hw2 = _conv_bn(STEM_CHANNELS, STEM_CHANNELS, 3, 1, hw1,
                       groups=STEM_CHANNELS)
    c3, hw3 = _conv_bn(STEM_CHANNELS, STEM_CHANNELS, 1, 1, hw2)
    return c1 + c2 + se(STEM_CHANNELS, hw2) + c3, hw3


def tail_cost(cin, hw, num_classes=1000, with_head=True):
    """``blocks.6`` (1x1 conv to 320) and optionally the release's head."""
    cost, hw = _conv_bn(cin, TAIL_CHANNELS, 1, 1, hw)
    if with_head and num_classes:
        cost = (cost + pool(TAIL_CHANNELS, hw)
                + conv(TAIL_CHANNELS, HEAD_CHANNELS, 1, 1, (1, 1),
                       bias=True)[0]
                + Cost(HEAD_CHANNELS * num_classes,
                       HEAD_CHANNELS * num_classes,
                       HEAD_CHANNELS * num_classes + num_classes))
    return cost


def arch_cost(arch, input_size: int | None = None, num_classes: int = 1000,
              with_head: bool = True, in_channels: int = 3,
              stage_channels=STAGE_CHANNELS,
              stage_strides=STAGE_STRIDES) -> Cost:
    """Total cost of an arch (string, released name or Arch).

    ``input_size`` (an int, or ``(H, W)``) defaults to the arch's ``@R``
    resolution, else 224.  ``with_head`` adds the classification head
    (pool, conv_head, FC).
    """
    arch = parse_arch(arch)
    size = input_size or arch.resolution or 224
    size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    total, hw = stem_cost(size, in_channels)
    ops = [op for s in arch.stages for op in s]
    layers = searched_layers([len(s) for s in arch.stages], stage_channels,
                             stage_strides)
    for op, (_, _, cin, cout, stride) in zip(ops, layers):
        cost, hw = layer_cost(op, cin, cout, stride, hw)
        total = total + cost
    return total + tail_cost(stage_channels[-1], hw, num_classes, with_head)
