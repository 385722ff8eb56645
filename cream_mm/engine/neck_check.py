"""Does a detector's neck read what its backbone gives, at the strides its
heads assume?

mmdet's stock configs are written for ResNet (four outputs, strides 4..32):
RetinaNet's FPN uses ``start_level=1`` (skip C2, stride 4) with anchors at
strides 8..128, two-stage detectors use all four levels with RPN anchors at
4..64 and RoI extractors at 4..32.  A Cream backbone with
``out_indices=(2, 4, 6)`` gives three outputs at strides 8/16/32, so the
stock ``start_level=1`` makes the FPN start at stride 16 and produce
16..256 while the anchors still assume 8..128 -- mmdet trains and tests
without complaint, on the wrong scales.

:func:`check_detector` compares, with one forward of the backbone on a
dummy image (its strides are read, not assumed):

* the backbone's output channels with ``neck.in_channels``;
* the neck's output strides (from ``start_level``/``end_level``/
  ``num_outs``) with the strides of ``bbox_head``/``rpn_head``'s prior
  generator and ``roi_head``'s RoI extractor(s).

:class:`NeckCheckHook` logs each finding as a warning before a run starts;
``tools/train.py``/``tools/test.py`` add it (via
:func:`~cream_mm.engine.prepare_runner_cfg`).  See docs/detection.md.
"""
from __future__ import annotations

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def _first(stride) -> int:
    return int(stride[0] if isinstance(stride, (tuple, list)) else stride)


@torch.no_grad()
def backbone_outputs(backbone, size: int = 256) -> list[tuple[int, int]]:
    """``(channels, stride)`` of each backbone output, from one forward of a
    ``size`` x ``size`` zero image in eval mode (train flags restored)."""
    param = next(backbone.parameters(), None)
    device = param.device if param is not None else 'cpu'
    in_ch = getattr(backbone, 'in_channels', 3)
    flags = [(m, m.training) for m in backbone.modules()]
    backbone.eval()
    try:
        outs = backbone(torch.zeros(1, in_ch, size, size, device=device))
    finally:
        for m, flag in flags:
            m.training = flag
    return [(int(o.shape[1]), size // int(o.shape[-1])) for o in outs]


def neck_strides(neck, in_strides: list[int]) -> list[int] | None:
    """Output strides of an FPN-like neck fed ``in_strides``, or None if the
    neck does not describe its levels (no ``num_outs``)."""
    num_outs = getattr(neck, 'num_outs', None)
    if num_outs is None:
        return None
    start = getattr(neck, 'start_level', 0)
    end = getattr(neck, 'backbone_end_level', len(in_strides))
    used = list(in_strides[start:end])
    if not used:
        return None
    while len(used) < num_outs:
        used.append(used[-1] * 2)
    return used[:num_outs]


def _head_strides(model) -> list[tuple[str, list[int]]]:
    found = []
    for name in ('bbox_head', 'rpn_head'):
        gen = getattr(getattr(model, name, None), 'prior_generator', None)
        if gen is not None and hasattr(gen, 'strides'):
            found.append((f'{name} prior strides',
                          [_first(s) for s in gen.strides]))
    roi = getattr(model, 'roi_head', None)
    for name in ('bbox_roi_extractor', 'mask_roi_extractor'):
        ext = getattr(roi, name, None)
        exts = ext if isinstance(ext, (list, torch.nn.ModuleList)) else [ext]
        for i, e in enumerate(x for x in exts if x is not None):
            if hasattr(e, 'featmap_strides'):
                found.append((f'roi_head.{name} featmap_strides',
                              [_first(s) for s in e.featmap_strides]))
    return found


def check_detector(model) -> list[str]:
    """Problems of ``model`` (an mmdet detector) as readable lines; ``[]``
    when the neck matches the backbone and the heads match the neck, or
    when ``model`` has no ``backbone``/``neck``."""
    if is_model_wrapper(model):
        model = model.module
    backbone, neck = getattr(model, 'backbone', None), getattr(
        model, 'neck', None)
    if backbone is None or neck is None:
        return []
    if isinstance(neck, torch.nn.Sequential):
        neck = neck[0]
    outs = backbone_outputs(backbone)
    channels, strides = [c for c, _ in outs], [s for _, s in outs]
    problems = []
    want = getattr(neck, 'in_channels', None)
    if isinstance(want, int):
        want = [want]
    if want is not None and list(want) != channels:
        problems.append(
            f'neck.in_channels={list(want)} but the backbone outputs '
            f'{channels} channels (strides {strides}); set '
            f'neck.in_channels={channels}')
        return problems
    levels = neck_strides(neck, strides)
    if levels is None:
        return problems
    start = getattr(neck, 'start_level', 0)
    for what, head in _head_strides(model):
        if levels[:len(head)] != head:
            fix = (f'; neck.start_level={start} skips the backbone output(s) '
                   f'at stride {strides[:start]} -- use start_level=0'
                   if start and strides[0] == head[0] else
                   f'; set them to {levels[:len(head)]}')
            problems.append(f'{what} are {head} but the neck outputs '
                            f'strides {levels}{fix}')
    return problems


@HOOKS.register_module()
class NeckCheckHook(Hook):
    """Warn (``before_run``) about every :func:`check_detector` problem."""

    priority = 'VERY_LOW'

    def before_run(self, runner) -> None:
        for line in check_detector(runner.model):
            print_log(f'detector geometry: {line}', logger='current',
                      level=30)
