"""Analytic FLOPs and parameters of AttentiveNAS / AlphaNet subnets.

AttentiveNAS's ``compute_active_subnet_flops`` (and its thop-style
``utils/flops_counter.py``) counts multiply-adds of convolutions (including
the SE 1x1 convs and the 1x1 shortcut convs) and of the classifier; BN,
activations, pooling and additions count 0, and the "MFLOPs" of the
AlphaNet table (203 ... 709) are these multiply-adds / 1e6. Here ``macs``
and ``flops`` are both that count. It equals mmengine's ``FlopAnalyzer``
conv + linear counts on the exported :class:`AttentiveNet` + head exactly
(tests).
"""
from __future__ import annotations

from .attentive_arch import AttentiveArch, parse_attentive_arch
from .attentive_net import PAPER, attentive_layers
from .blocks import SE_RATIO, make_divisible
from .complexity import Cost


def _ceil(size: int, stride: int) -> int:
    return (size - 1) // stride + 1


def _conv(cin, cout, k, hw, groups=1, bias=False) -> Cost:
    w = cout * (cin // groups) * k * k
    return Cost(w * hw * hw, w * hw * hw, w + (cout if bias else 0))


def _bn(c) -> Cost:
    return Cost(0, 0, 2 * c)


def attentive_cost(arch: AttentiveArch | str, num_classes: int = 1000,
                   in_channels: int = 3, with_head: bool = True,
                   stage_strides=PAPER.stage_strides,
                   stage_se=PAPER.stage_se,
                   final_expand: int = PAPER.final_expand) -> Cost:
    """Cost of ``arch`` at its resolution: backbone (first conv, blocks,
    final expand) and, with ``with_head``, the feature-mix conv and the
    classifier (FC bias counted in params only)."""
    a = parse_attentive_arch(arch)
    hw = _ceil(a.resolution, 2)
    total = _conv(in_channels, a.width[0], 3, hw) + _bn(a.width[0])
    for s, _, cin, cout, stride in attentive_layers(a, stage_strides):
        e, k = a.expand[s], a.kernel[s]
        out_hw = _ceil(hw, stride)
        if e == 1:
            mid = cin
        else:
            mid = make_divisible(cin * e, 8)
            total += _conv(cin, mid, 1, hw) + _bn(mid)
        total += _conv(mid, mid, k, out_hw, groups=mid) + _bn(mid)
        if stage_se[s]:
            r = make_divisible(mid * SE_RATIO, 8)
            total += _conv(mid, r, 1, 1, bias=True)
            total += _conv(r, mid, 1, 1, bias=True)
        total += _conv(mid, cout, 1, out_hw) + _bn(cout)
        if cin != cout:
            total += _conv(cin, cout, 1, out_hw)
        hw = out_hw
    c_exp = a.width[-2] * final_expand
    total += _conv(a.width[-2], c_exp, 1, hw) + _bn(c_exp)
    if with_head:
        total += _conv(c_exp, a.width[-1], 1, 1)
        fc = a.width[-1] * num_classes
        total += Cost(fc, fc, fc + num_classes)
    return total
