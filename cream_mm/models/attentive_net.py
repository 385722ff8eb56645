"""AttentiveNet: a fixed AttentiveNAS / AlphaNet subnet as an OpenMMLab
backbone, built only from :mod:`cream_mm.models.blocks`.

Layout (AttentiveNAS's ``AttentiveNasStaticModel``, v3 head)::

    first_conv   ConvBnAct 3x3/2                         (width[0])
    blocks.0..6  mb1..mb7: DS (expand 1) or MBConv blocks, SE per stage,
                 AttentiveNAS shortcuts (avg-pool + 1x1 conv when the shape
                 changes, see blocks.PoolConvShortcut)
    blocks.7     final expand: ConvBnAct 1x1 to final_expand * width[7]

The rest of the v3 head -- pool, the bias-free 1x1 "feature mix" conv to
width[8] (1792 / 1984), swish, dropout, linear -- is
:class:`~cream_mm.models.heads.CreamClsHead` with ``conv_bias=False``.
``out_indices`` pick among ``blocks.0..7`` (strides 2, 4, 8, 16, 16, 32, 32,
32 for the paper space); detection uses (2, 4, 6): mb3, mb5, mb7.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from ..registry import register_model
from .attentive_arch import AttentiveArch, AttentiveSpace, parse_attentive_arch
from .blocks import (DEFAULT_ACT, DEFAULT_NORM, SE_RATIO, ConvBnAct,
                     DepthwiseSeparable, InvertedResidual)
from .cream_net import DEFAULT_INIT
from .staged_backbone import StagedBackboneMixin

PAPER = AttentiveSpace()


def attentive_layers(arch: AttentiveArch, strides: Sequence[int]):
    """Yield ``(stage, index, in_ch, out_ch, stride)`` of every MBConv
    block of ``arch`` (stage counts from 0: ``blocks.0`` is mb1)."""
    cin = arch.width[0]
    for s, (d, cout, stride) in enumerate(zip(arch.depth, arch.width[1:-1],
                                              strides)):
        for i in range(d):
            yield s, i, cin, cout, stride if i == 0 else 1
            cin = cout


def build_attentive_block(cin, cout, kernel, expand, stride, se, **kwargs):
    """The block of one layer: depthwise-separable when ``expand == 1``
    (AttentiveNAS has no inverted bottleneck then), else MBConv."""
    se_ratio = SE_RATIO if se else 0.
    if expand == 1:
        return DepthwiseSeparable(cin, cout, kernel, stride, se_ratio,
                                  shortcut='pool_conv', **kwargs)
    return InvertedResidual(cin, cout, kernel, stride, expand, se_ratio,
                            shortcut='pool_conv', **kwargs)


@register_model()
class AttentiveNet(StagedBackboneMixin, BaseModule):
    """A fixed subnet of the AttentiveNAS space (AlphaNet A0-A6 or any
    arch string of :mod:`cream_mm.models.attentive_arch`).

    Args:
        arch (str | AttentiveArch): ``alphanet-a0`` ... ``alphanet-a6``
            (``alphanet-a5-small`` / ``-base``) or an arch string.
        in_channels (int): input image channels.
        out_indices (Sequence[int]): outputs among ``blocks.0..7``.
        frozen_stages (int): -1 none, 0 first conv, k first conv +
            ``blocks.0..k-1``.
        norm_eval (bool): keep BN layers in eval mode while training.
        drop_path_rate (float): stochastic depth of the last block (linear
            in the block index; identity-shortcut blocks only).
        stage_strides, stage_se: geometry of the stages (paper's default).
        final_expand (int): width ratio of the final expand conv (6).
        norm_cfg, act_cfg: mmcv configs of norm and activation layers.
        init_cfg: mmengine init config (``Pretrained`` loads strictly).
    """
    conv_bn_pairs = (('first_conv.conv', 'first_conv.bn1'), )

    def __init__(self, arch: str | AttentiveArch = 'alphanet-a0',
                 in_channels: int = 3, out_indices: Sequence[int] = (7, ),
                 frozen_stages: int = -1, norm_eval: bool = False,
                 drop_path_rate: float = 0.,
                 stage_strides: Sequence[int] = PAPER.stage_strides,
                 stage_se: Sequence[bool] = PAPER.stage_se,
                 final_expand: int = PAPER.final_expand,
                 norm_cfg: dict = DEFAULT_NORM, act_cfg: dict = DEFAULT_ACT,
                 init_cfg=DEFAULT_INIT):
        super().__init__(init_cfg=init_cfg)
        self.arch = parse_attentive_arch(arch)
        n = self.arch.num_stages
        if len(stage_strides) != n or len(stage_se) != n:
            raise ValueError(f'stage_strides / stage_se: one per stage '
                             f'({n}), got {len(stage_strides)} / '
                             f'{len(stage_se)}')
        self.num_block_stages = n + 1
        self._check_indices(out_indices, frozen_stages, drop_path_rate)
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        w = self.arch.width
        self.first_conv = ConvBnAct(in_channels, w[0], 3, 2,
                                    norm_cfg=norm_cfg, act_cfg=act_cfg)
        stages = [[] for _ in range(n)]
        total = sum(self.arch.depth)
        for k, (s, i, cin, cout, stride) in enumerate(
                attentive_layers(self.arch, stage_strides)):
            stages[s].append(build_attentive_block(
                cin, cout, self.arch.kernel[s], self.arch.expand[s], stride,
                stage_se[s], norm_cfg=norm_cfg, act_cfg=act_cfg,
                drop_path_rate=drop_path_rate * k / total))
        tail = ConvBnAct(w[-2], w[-2] * final_expand, 1, 1,
                         norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.blocks = nn.Sequential(*[nn.Sequential(*s) for s in stages],
                                    nn.Sequential(tail))
        self.out_channels = [*w[1:-1], w[-2] * final_expand]
        self.head_channels = w[-1]
        self._freeze_stages()

    # forward, freezing, norm_eval, checks: StagedBackboneMixin
    def stem_modules(self) -> list[nn.Module]:
        return [self.first_conv]

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.first_conv(x)
