"""CreamNet: a fixed Cream architecture as an OpenMMLab backbone.

Layout (Appendix A, Table 8; module names of the authors' release)::

    conv_stem 3x3/2 -> bn1 -> act1                      (16 ch, stride 2)
    blocks.0   depthwise-separable 3x3                  (16 ch, stride 2)
    blocks.1-5 searched stages, first strides 2,2,2,1,2 (24/40/80/96/192 ch)
    blocks.6   1x1 conv -> BN -> act                    (320 ch, stride 32)

``out_indices`` pick outputs among ``blocks.0 .. blocks.6`` (strides 2, 4, 8,
16, 16, 32, 32); detection uses (2, 4, 6) = 40, 96, 320 channels at strides
8/16/32. ``frozen_stages``: -1 freezes nothing, 0 the stem, k the stem and
``blocks.0 .. blocks.k-1`` (mmdet's convention). A ``skip`` layer is kept as an
``nn.Identity`` so that layer indices -- and so state-dict keys -- are those of
the hypernetwork path it came from.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.model import BaseModule

from ..arch import Arch, parse_arch
from ..registry import register_model
from .blocks import (DEFAULT_ACT, DEFAULT_NORM, ConvBnAct, DepthwiseSeparable,
                     _conv, build_op)
from .staged_backbone import StagedBackboneMixin

STEM_CHANNELS = 16
STAGE_CHANNELS = (24, 40, 80, 96, 192)
STAGE_STRIDES = (2, 2, 2, 1, 2)
TAIL_CHANNELS = 320
NUM_BLOCK_STAGES = 7  # blocks.0 (DS) + 5 searched + blocks.6 (tail)


def searched_layers(depths: Sequence[int],
                    stage_channels: Sequence[int] = STAGE_CHANNELS,
                    stage_strides: Sequence[int] = STAGE_STRIDES,
                    in_channels: int = STEM_CHANNELS):
    """Yield ``(stage, index, in_ch, out_ch, stride)`` of every searched layer.

    ``stage`` counts from 1 (``blocks.1`` .. ``blocks.5``). Shared by CreamNet
    and the hypernetwork so that both place layers identically.
    """
    cin = in_channels
    for s, (depth, cout, stride) in enumerate(
            zip(depths, stage_channels, stage_strides), 1):
        for i in range(depth):
            yield s, i, cin, cout, stride if i == 0 else 1
            cin = cout


def drop_path_rates(depths: Sequence[int], rate: float) -> list[float]:
    """Linearly increasing stochastic-depth rates over the searched layers."""
    n = sum(depths)
    return [rate * i / n for i in range(n)]


class CreamStemMixin(StagedBackboneMixin):
    """Stem, first DS block and tail shared by CreamNet and the supernet
    (``forward``, freezing, ``norm_eval``: :class:`StagedBackboneMixin`)."""
    conv_bn_pairs = (('conv_stem', 'bn1'), )
    num_block_stages = NUM_BLOCK_STAGES

    def _build_fixed_parts(self, in_channels, norm_cfg, act_cfg, stage_ch):
        self.conv_stem = _conv(in_channels, STEM_CHANNELS, 3, 2)
        self.bn1 = build_norm_layer(norm_cfg, STEM_CHANNELS)[1]
        self.act1 = build_activation_layer(act_cfg)
        ds = DepthwiseSeparable(STEM_CHANNELS, STEM_CHANNELS, 3, 1,
                                norm_cfg=norm_cfg, act_cfg=act_cfg)
        tail = ConvBnAct(stage_ch[-1], TAIL_CHANNELS, 1, 1, norm_cfg=norm_cfg,
                         act_cfg=act_cfg)
        return nn.Sequential(ds), nn.Sequential(tail)

    def stem_modules(self) -> list[nn.Module]:
        return [self.conv_stem, self.bn1]

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.act1(self.bn1(self.conv_stem(x)))


DEFAULT_INIT = [
    dict(type='Kaiming', layer='Conv2d', mode='fan_out',
         nonlinearity='relu'),
    dict(type='Constant', layer=['_BatchNorm', 'GroupNorm'], val=1),
    dict(type='Normal', layer='Linear', std=0.01),
]


@register_model()
class CreamNet(CreamStemMixin, BaseModule):
    """A fixed Cream architecture (the released models or any arch string).

    Args:
        arch (str | Arch): a released name (``cream-14m`` ... ``cream-604m``,
            ``cream-s``/``-m``/``-l``) or an arch string of
            :mod:`cream_mm.arch`.
        in_channels (int): input image channels.
        out_indices (Sequence[int]): outputs among ``blocks.0..6``.
        frozen_stages (int): -1 none, 0 stem, k stem + ``blocks.0..k-1``.
        norm_eval (bool): keep BN layers in eval mode while training.
        drop_path_rate (float): stochastic depth of the last searched layer.
        stage_channels, stage_strides: geometry of the five searched stages.
        norm_cfg, act_cfg: mmcv configs of norm and activation layers.
        init_cfg: mmengine init config.
    """

    def __init__(self, arch: str | Arch = 'cream-287m', in_channels: int = 3,
                 out_indices: Sequence[int] = (6, ), frozen_stages: int = -1,
                 norm_eval: bool = False, drop_path_rate: float = 0.,
                 stage_channels: Sequence[int] = STAGE_CHANNELS,
                 stage_strides: Sequence[int] = STAGE_STRIDES,
                 norm_cfg: dict = DEFAULT_NORM, act_cfg: dict = DEFAULT_ACT,
                 init_cfg=DEFAULT_INIT):
        super().__init__(init_cfg=init_cfg)
        self.arch = parse_arch(arch)
        self._check_indices(out_indices, frozen_stages, drop_path_rate)
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        ds, tail = self._build_fixed_parts(in_channels, norm_cfg, act_cfg,
                                           stage_channels)
        stages = [[] for _ in stage_channels]
        dpr = drop_path_rates(self.arch.depths, drop_path_rate)
        ops = [op for s in self.arch.stages for op in s]
        k = 0
        for (s, i, cin, cout, stride), op in zip(
                searched_layers([len(x) for x in self.arch.stages],
                                stage_channels, stage_strides), ops):
            stages[s - 1].append(build_op(
                op, cin, cout, stride, norm_cfg=norm_cfg, act_cfg=act_cfg,
                drop_path_rate=dpr[min(k, len(dpr) - 1)]))
            k += op != 'skip'
        self.blocks = nn.Sequential(ds, *[nn.Sequential(*s) for s in stages],
                                    tail)
        self.out_channels = [STEM_CHANNELS, *stage_channels, TAIL_CHANNELS]
        self._freeze_stages()

