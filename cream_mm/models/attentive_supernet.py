"""The AttentiveNAS / AlphaNet supernet (weight-sharing by slicing).

Every block of the space is built once at its largest size; a subnet
(:class:`~cream_mm.models.attentive_arch.AttentiveArch`) runs the first
``depth[s]`` blocks of stage ``s`` with ``width``/``kernel``/``expand``
slices of their weights (:mod:`cream_mm.models.dynamic_ops`). Module names
equal those of :class:`~cream_mm.models.attentive_net.AttentiveNet`, so
:meth:`AttentiveSupernet.export` slices the supernet's state dict to the
child's shapes and loads it with ``strict=True`` without renaming a key.

The elastic part of the v3 head (the feature-mix width ``width[-1]``) is
:class:`AttentiveDynamicHead`; algorithms call its :meth:`set_path` with the
arch they pass to the supernet.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from ..registry import register_model
from .attentive_arch import (AttentiveArch, AttentiveSpace,
                             format_attentive_arch, parse_attentive_arch)
from .attentive_net import PAPER, AttentiveNet
from .blocks import DEFAULT_ACT, DEFAULT_NORM
from .cream_net import DEFAULT_INIT
from .dynamic_ops import (DynamicConvBnAct, DynamicDepthwiseSeparable,
                          DynamicInvertedResidual, sliced_conv)
from .heads import CreamClsHead
from .staged_backbone import StagedBackboneMixin, check_drop_path_rate


def slice_to(src: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Leftmost slice of ``src`` to ``shape``; the two kernel dims of a 4-D
    conv weight are centre-cropped."""
    if src.dim() == 0:
        return src.clone()
    idx = []
    for d, (n, m) in enumerate(zip(src.shape, shape)):
        start = (n - m) // 2 if src.dim() == 4 and d >= 2 else 0
        idx.append(slice(start, start + m))
    return src[tuple(idx)].clone()


def load_sliced(child: nn.Module, state: dict, what: str) -> None:
    """``child.load_state_dict(strict=True)`` of the slices of ``state``
    (a larger model's) to the child's own keys and shapes."""
    own = child.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise KeyError(f'{what}: keys missing in the supernet: {missing}')
    child.load_state_dict({k: slice_to(state[k], v.shape)
                           for k, v in own.items()}, strict=True)


@register_model()
class AttentiveSupernet(StagedBackboneMixin, BaseModule):
    """Weight-sliced supernet of an :class:`AttentiveSpace`.

    Args:
        space (dict | AttentiveSpace | None): the space (None: the paper's).
        in_channels, out_indices, frozen_stages, norm_eval, norm_cfg,
        act_cfg, init_cfg: as :class:`AttentiveNet`.
    """
    conv_bn_pairs = ()

    def __init__(self, space: dict | AttentiveSpace | None = None,
                 in_channels: int = 3, out_indices: Sequence[int] = None,
                 frozen_stages: int = -1, norm_eval: bool = False,
                 norm_cfg: dict = DEFAULT_NORM, act_cfg: dict = DEFAULT_ACT,
                 init_cfg=DEFAULT_INIT):
        super().__init__(init_cfg=init_cfg)
        self.space = sp = AttentiveSpace.build(space)
        n = sp.num_stages
        self.num_block_stages = n + 1
        out_indices = (n, ) if out_indices is None else out_indices
        self._check_indices(out_indices, frozen_stages)
        self.out_indices = tuple(out_indices)
        self.frozen_stages, self.norm_eval = frozen_stages, norm_eval
        self.in_channels = in_channels
        self._block_cfg = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.first_conv = DynamicConvBnAct(in_channels, max(sp.first_widths),
                                           3, 2, **self._block_cfg)
        stages = []
        prev = tuple(sp.first_widths)
        for s in range(n):
            widths, stride = sp.stage_widths[s], sp.stage_strides[s]
            blocks = []
            for i in range(max(sp.stage_depths[s])):
                cin = prev if i == 0 else widths
                st = stride if i == 0 else 1
                # a 1x1 shortcut conv exists where some arch changes width
                conv = i == 0 and not (len(set(cin) | set(widths)) == 1)
                kw = dict(max_in=max(cin), max_out=max(widths),
                          max_kernel=max(sp.stage_kernels[s]), stride=st,
                          se=sp.stage_se[s], needs_shortcut_conv=conv,
                          **self._block_cfg)
                if sp.stage_expands[s] == (1, ):
                    blocks.append(DynamicDepthwiseSeparable(**kw))
                else:
                    blocks.append(DynamicInvertedResidual(
                        max_expand=max(sp.stage_expands[s]), **kw))
            stages.append(nn.Sequential(*blocks))
            prev = widths
        last = max(sp.stage_widths[-1])
        tail = DynamicConvBnAct(last, last * sp.final_expand, 1, 1,
                                **self._block_cfg)
        self.blocks = nn.Sequential(*stages, nn.Sequential(tail))
        self.out_channels = [*(max(w) for w in sp.stage_widths),
                             last * sp.final_expand]
        self.path = sp.extreme(largest=True)
        self._freeze_stages()

    # ------------------------------------------------------- the protocol
    def set_path(self, arch: AttentiveArch | str) -> None:
        """Activate ``arch`` (validated against the space)."""
        self.path = parse_attentive_arch(arch, self.space)

    def forward(self, x: torch.Tensor, arch: AttentiveArch | str | None = None):
        """Features of ``arch`` (default: the active path) per
        ``out_indices``; the input is used at the size given (callers
        resize to ``arch.resolution``)."""
        a = self.path if arch is None else parse_attentive_arch(arch,
                                                                 self.space)
        x = self.first_conv(x, a.width[0])
        outs = []
        last = self.deepest_out_index  # no stage past it runs
        for s in range(min(self.space.num_stages, last + 1)):
            for block in self.blocks[s][:a.depth[s]]:
                x = block(x, a.width[s + 1], a.kernel[s], a.expand[s])
            if s in self.out_indices:
                outs.append(x)
        if last == self.space.num_stages:
            outs.append(self.blocks[-1][0](
                x, a.width[-2] * self.space.final_expand))
        return tuple(outs)

    def set_drop_path(self, rate: float, last_stages: int = 2) -> None:
        """AlphaNet's ``set_dropout_rate(drop_connect=rate)``: block ``i``
        (of all blocks, counted at full depth) gets ``rate * i / n`` in the
        last ``last_stages`` stages, 0 elsewhere (identity shortcuts only)."""
        check_drop_path_rate(rate)
        blocks = [b for stage in self.blocks[:-1] for b in stage]
        first = sum(len(st) for st in self.blocks[:-1 - last_stages])
        for i, b in enumerate(blocks):
            b.drop_path_rate = rate * i / len(blocks) if i >= first else 0.

    def searched_modules(self) -> list[str]:
        """Every elastic module: first conv, each block, final expand
        (their weights are sliced by the arch)."""
        names = ['first_conv']
        for s, stage in enumerate(self.blocks):
            names += [f'blocks.{s}.{i}' for i in range(len(stage))]
        return names

    def _fixed_kwargs(self) -> dict:
        sp = self.space
        kw = {}
        if sp.stage_strides != PAPER.stage_strides:
            kw['stage_strides'] = sp.stage_strides
        if sp.stage_se != PAPER.stage_se:
            kw['stage_se'] = sp.stage_se
        if sp.final_expand != PAPER.final_expand:
            kw['final_expand'] = sp.final_expand
        return kw

    def backbone_cfg(self, arch: AttentiveArch | str | None = None) -> dict:
        """Config of the exported :class:`AttentiveNet` of ``arch``."""
        arch = self.path if arch is None else parse_attentive_arch(
            arch, self.space)
        return dict(type='AttentiveNet', arch=format_attentive_arch(arch),
                    **self._fixed_kwargs())

    def export(self, arch: AttentiveArch | str | None = None, **net_kwargs
               ) -> AttentiveNet:
        """``arch`` as an :class:`AttentiveNet` carrying the supernet's
        sliced weights and BN statistics (``strict=True``, same keys)."""
        arch = self.path if arch is None else parse_attentive_arch(
            arch, self.space)
        kwargs = dict(in_channels=self.in_channels,
                      out_indices=self.out_indices, **self._block_cfg,
                      **self._fixed_kwargs())
        kwargs.update(net_kwargs)
        child = AttentiveNet(arch, **kwargs)
        load_sliced(child, self.state_dict(), f'export of {arch}')
        return child

    def stem_modules(self) -> list[nn.Module]:
        """What ``frozen_stages=0`` freezes (as :class:`AttentiveNet`)."""
        return [self.first_conv]


@register_model(scopes=('mmpretrain', ))
class AttentiveDynamicHead(CreamClsHead):
    """The v3 head at the largest feature-mix width, sliced to the active
    arch's ``width[-1]`` (and input ``final_expand * width[-2]``, read from
    the features): pool -> 1x1 conv (no bias) -> swish -> dropout -> FC.

    Args:
        num_classes (int): classes.
        in_channels (int): the largest final-expand width (6 * 224).
        head_channels (int): the largest feature-mix width (1984).
        dropout (float): dropout before the classifier.
    """

    def __init__(self, num_classes: int, in_channels: int = 1344,
                 head_channels: int = 1984, dropout: float = 0.,
                 **kwargs):
        kwargs.setdefault('conv_bias', False)
        super().__init__(num_classes, in_channels, head_channels, dropout,
                         **kwargs)
        self.active_channels = head_channels

    def set_path(self, arch: AttentiveArch | str) -> None:
        self.active_channels = parse_attentive_arch(arch).width[-1]

    def pre_logits(self, feats):
        x = feats[-1].mean((2, 3), keepdim=True)
        x = sliced_conv(self.conv_head, x, self.active_channels)
        return self.act2(x).flatten(1)

    def forward(self, feats):
        x = self.dropout(self.pre_logits(feats))
        c = x.shape[1]
        return F.linear(x, self.classifier.weight[:, :c],
                        self.classifier.bias)

    def export(self, arch: AttentiveArch | str, final_expand: int = 6,
               **head_kwargs) -> CreamClsHead:
        """The head of ``arch`` as a :class:`CreamClsHead` with sliced
        weights (``strict=True``)."""
        arch = parse_attentive_arch(arch)
        kw = dict(num_classes=self.num_classes,
                  in_channels=arch.width[-2] * final_expand,
                  head_channels=arch.width[-1], dropout=0.,
                  conv_bias=self.conv_head.bias is not None)
        kw.update(head_kwargs)
        head = CreamClsHead(**kw)
        load_sliced(head, self.state_dict(), f'head export of {arch}')
        return head
