"""The classification head of the authors' release, for mmpretrain.

pool -> 1x1 conv 320->1280 (bias, no BN) -> Swish -> dropout -> Linear.
The global pool comes *before* the head conv, as in the release (README §2).
"""
from __future__ import annotations

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer
from mmpretrain.models.heads import ClsHead

from ..registry import register_model
from .blocks import DEFAULT_ACT


@register_model(scopes=('mmpretrain', ))
class CreamClsHead(ClsHead):
    """Release head: global pool, ``conv_head`` (bias), act, dropout, FC.

    Args:
        num_classes (int): number of classes.
        in_channels (int): channels of the backbone's last output (320).
        head_channels (int): width of ``conv_head`` (1280).
        dropout (float): dropout before the classifier (0.2 in §4.1).
        conv_bias (bool): bias of ``conv_head`` (False: AttentiveNAS's
            bias-free ``feature_mix_layer`` of the v3 head).
    """

    def __init__(self, num_classes: int, in_channels: int = 320,
                 head_channels: int = 1280, dropout: float = 0.2,
                 act_cfg: dict = DEFAULT_ACT, conv_bias: bool = True,
                 init_cfg=dict(type='Normal', layer='Linear', std=0.01),
                 **kwargs):
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be positive')
        self.num_classes = num_classes
        self.conv_head = nn.Conv2d(in_channels, head_channels, 1,
                                   bias=conv_bias)
        self.act2 = build_activation_layer(act_cfg)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(head_channels, num_classes)

    def pre_logits(self, feats: tuple[torch.Tensor]) -> torch.Tensor:
        x = feats[-1].mean((2, 3), keepdim=True)
        return self.act2(self.conv_head(x)).flatten(1)

    def forward(self, feats: tuple[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.dropout(self.pre_logits(feats)))
