"""Final selection (Alg. 1 line 14) and export of the winning path.

:func:`select_from_board` evaluates the K board paths on validation data
and ranks them (the paper's 0.02 GPU-day "search"). :func:`export_arch`
writes what retraining needs: the arch string, an mmpretrain config and an
mmdet RetinaNet config that inherit the project's configs and use the path,
and the path's inherited weights as an mmpretrain ``ImageClassifier``
checkpoint (``backbone.*`` = the exported :class:`CreamNet`, ``head.*``).
"""
from __future__ import annotations

import json
import os.path as osp
from pathlib import Path

import torch

from ..arch import Arch, format_arch
from ..models.complexity import arch_cost
from .precision import refuse_nonfinite

CONFIG_ROOT = Path(__file__).resolve().parents[2] / 'configs'
DEFAULT_CLS_BASE = 'cream/cream-287m_16xb128_in1k.py'
DEFAULT_DET_BASE = 'retinanet/retinanet_cream-s_fpn_1x_coco.py'


def select_from_board(model, batches: list | None = None) -> list[dict]:
    """Score every board path on ``batches`` (default: the attached search
    subset); rows best first with arch, FLOPs and top-1."""
    if batches is not None:
        saved = model._val_batches
        model.attach_search_val(batches)
    try:
        rows = []
        for k in range(len(model.board)):
            arch = model.board_arch(k)
            rows.append(dict(arch=format_arch(arch),
                             flops=model.board.entry(k)[2],
                             top1=model.val_top1(arch)))
    finally:
        if batches is not None:
            model._val_batches, model._val_count = saved, None
    return sorted(rows, key=lambda r: (-r['top1'], r['flops']))


def _base(path: str) -> str:
    p = Path(path)
    return str(p if p.is_absolute() else CONFIG_ROOT / p)


def _pipelines(size: int) -> str:
    """Train / test pipelines of the embedded classifier at ``size``."""
    return (
        f"train_pipeline = [dict(type='Resize', scale=({size}, {size})),\n"
        f"                  dict(type='RandomCrop', crop_size={size},\n"
        f"                       padding={max(size // 8, 1)}),\n"
        f"                  dict(type='PackInputs')]\n"
        f"test_pipeline = [dict(type='Resize', scale=({size}, {size})),\n"
        f"                 dict(type='PackInputs')]\n"
        f"train_dataloader = dict(dataset=dict(pipeline=train_pipeline))\n"
        f"val_dataloader = dict(dataset=dict(pipeline=test_pipeline))\n"
        f"test_dataloader = val_dataloader\n")


def export_arch(model, arch, out_dir: str, name: str = 'searched',
                cls_base: str = DEFAULT_CLS_BASE,
                det_base: str = DEFAULT_DET_BASE,
                cls_input_size: int | str | None = None,
                extra: dict | None = None) -> dict:
    """Write ``<name>.arch``, ``<name>_cls.py``, ``<name>_retinanet.py``,
    ``<name>_inherited.pth`` and ``<name>.json`` into ``out_dir``.

    ``cls_base`` / ``det_base``: the configs the exported ones inherit
    (relative to ``configs/`` or absolute): the ImageNet / COCO ones by
    default; a search on the embedded data names
    ``embedded/cream-14m_fmnist.py`` and
    ``embedded/retinanet_cream-s_fpn_trees.py`` (see the tiny search
    configs), so search -> retrain -> detect chains by files alone.
    A detection search (:class:`~cream_mm.search.det_cream.DetCreamSearch`)
    writes its own parts (backbone weights only) and also
    ``<name>_detector.py`` / ``<name>_detector.pth``: the searched detector
    and its inherited weights.
    ``cls_input_size``: ``'search'`` retrains at the path's search
    resolution (pipelines of the embedded classifier rewritten), an int at
    that size, None keeps the base config's pipelines. The classifier's
    head has the search head's widths, so ``load_from`` of the inherited
    weights loads strictly.

    Any space of the search protocol: the arch string is
    ``model.sampler.key(arch)``, the backbone config
    ``model.backbone.backbone_cfg(arch)``, the weights
    ``model.backbone.export(arch)`` (+ the head, sliced if elastic); a
    :class:`CreamSupernet` writes exactly the Cream files of before.
    Weights with a non-finite value are refused (ValueError naming them)
    before any file is written.
    """
    from ..models.supernet import CreamSupernet
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if hasattr(model, 'export_parts'):  # a detection search's own parts
        parts = model.export_parts(arch)
    else:
        parts = (_cream_parts(model, arch)
                 if isinstance(model.backbone, CreamSupernet)
                 else _protocol_parts(model, arch, _base(det_base)))
    text, size, child, head = (parts['text'], parts['size'], parts['child'],
                               parts['head'])
    weights = out / f'{name}_inherited.pth'
    # device-free: the head may be the search's own (on its device)
    state = {f'backbone.{k}': v.detach().cpu().contiguous()
             for k, v in child.state_dict().items()}
    if head is not None:
        state.update({f'head.{k}': v.detach().cpu().contiguous()
                      for k, v in head.state_dict().items()})
    refuse_nonfinite(state.items(), f'export of {text} to {weights}')
    (out / f'{name}.arch').write_text(text + '\n')
    torch.save(dict(state_dict=state, meta=dict(arch=text)), weights)
    header = parts['header']
    retrain_size = size if cls_input_size == 'search' else cls_input_size
    cls_text = (header + f"_base_ = ['{_base(cls_base)}']\n"
                + parts['cls_model'])
    if retrain_size:
        cls_text += (f'# retrained at the search resolution, {retrain_size}'
                     f'px\n' + _pipelines(int(retrain_size)))
    cls_text += ("# start from the supernet's weights instead of scratch:\n"
                 f"# load_from = '{osp.abspath(weights)}'\n")
    cls_path, det_path = out / f'{name}_cls.py', out / f'{name}_retinanet.py'
    cls_path.write_text(cls_text)
    det_path.write_text(header + f"_base_ = ['{_base(det_base)}']\n"
                        + parts['det_model'])
    summary = dict(arch=text, resolution=size, **parts['cost'],
                   cls_config=str(cls_path.resolve()),
                   det_config=str(det_path.resolve()),
                   inherited=str(weights.resolve()),
                   cls_base=_base(cls_base), det_base=_base(det_base),
                   **(extra or {}))
    if hasattr(model, 'export_detector'):  # the searched detector itself
        summary.update(model.export_detector(arch, out, name,
                                             _base(det_base)))
    (out / f'{name}.json').write_text(json.dumps(summary, indent=1))
    return summary


def _cream_parts(model, arch: Arch) -> dict:
    """What the Cream spaces export (files unchanged since the first
    release)."""
    text = format_arch(arch)
    size = arch.resolution or model.backbone.space.input_size
    cost = arch_cost(arch, size, model.num_classes)
    header = (f'# Searched by Cream: {text}\n# {cost.flops / 1e6:.2f}M '
              f'FLOPs (paper counting), {cost.macs / 1e6:.2f}M MACs, '
              f'{cost.params / 1e6:.2f}M params at {size}px\n')
    table = getattr(model, 'table', None)
    latency = table.summary(arch) if table is not None else {}
    if latency:  # a latency-cost search: its prediction, with conditions
        header += table.header(arch)
    head = model.head
    head_cfg = (f"head=dict(num_classes={model.num_classes}, "
                f"in_channels={head.conv_head.in_channels}, "
                f"head_channels={head.conv_head.out_channels})")
    return dict(
        text=text, size=size, child=model.backbone.export(arch), head=head,
        header=header,
        cls_model=(f"model = dict(backbone=dict(arch='{text}'),\n"
                   f"             {head_cfg})\n"),
        det_model=(f"model = dict(backbone=dict(arch='{text}', "
                   "init_cfg=None))\n"),
        cost=dict(flops=cost.flops, macs=cost.macs, params=cost.params,
                  **latency))


def _neck_channels(child, det_base: str) -> list[int] | None:
    """Input widths of the detector's neck for ``child`` at the det base's
    ``out_indices`` (spaces whose widths are searched), or None."""
    from mmengine.config import Config
    try:
        det = Config.fromfile(det_base)
    except FileNotFoundError:
        return None
    idx = det.model.get('backbone', {}).get('out_indices')
    channels = getattr(child, 'out_channels', None)
    if idx is None or channels is None or 'in_channels' not in \
            det.model.get('neck', {}):
        return None
    return [int(channels[i]) for i in idx]


def _protocol_parts(model, arch, det_base: str) -> dict:
    """Any other space, through the search protocol only."""
    from ..evaluation.ranking import subnet_head
    sampler = model.sampler
    text = sampler.key(arch)
    size = sampler.resolution(arch)
    child = model.backbone.export(arch)
    head = subnet_head(model, arch, child)
    backbone = dict(model.backbone.backbone_cfg(arch))
    cost = float(sampler.cost(arch))
    header = (f'# Searched by {type(model).__name__}: {text}\n'
              f'# {cost / 1e6:.2f}M (sampler cost, FLOPs unless the search '
              f'set flops_metric) at {size or "the data"}px\n')
    head_cfg = dict(num_classes=model.num_classes)
    conv = getattr(head, 'conv_head', None)
    if isinstance(conv, torch.nn.Conv2d):
        head_cfg.update(in_channels=conv.in_channels,
                        head_channels=conv.out_channels,
                        conv_bias=conv.bias is not None)
    det = f'model = dict(backbone={dict(backbone, init_cfg=None)!r}'
    neck = _neck_channels(child, det_base)
    det += f',\n             neck=dict(in_channels={neck!r}))\n' if neck \
        else ')\n'
    return dict(
        text=text, size=size, child=child, head=head, header=header,
        cls_model=(f'model = dict(backbone={dict(_delete_=True, **backbone)!r}'
                   f',\n             head={head_cfg!r})\n'),
        det_model=det, cost=dict(flops=cost))
