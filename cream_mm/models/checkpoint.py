"""Strict weight loading and conversion of the authors' released checkpoints.

The release (microsoft/Cream) saves timm-style dicts: ``state_dict`` and
``state_dict_ema`` (the evaluated EMA weights), plus training extras such as
``args`` (an ``argparse.Namespace``). Keys are those of
:class:`~cream_mm.models.CreamNet` for the backbone, ``conv_head``/``classifier``
for the head, possibly behind a ``module.`` prefix from DataParallel.

Every load here is strict: a key that is not consumed or a target that is not
filled is an error listing the keys -- never a silent partial load.
"""
from __future__ import annotations

import argparse
from collections import OrderedDict

import torch
import torch.nn as nn

from ..arch import MBCONV_OPS, NUM_STAGES, Arch, format_arch
from .blocks import make_divisible

HEAD_PREFIXES = ('conv_head.', 'classifier.')


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit the model it is loaded into."""


def strip_prefix(key: str, prefix: str) -> str:
    """Remove ``prefix`` from the start of ``key`` (never ``str.lstrip``)."""
    return key[len(prefix):] if key.startswith(prefix) else key


def _describe(keys, limit=12):
    keys = sorted(keys)
    more = f' ... and {len(keys) - limit} more' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def _shape(value) -> tuple:
    return tuple(getattr(value, 'shape', ()))


def state_dict_problems(target: dict, state: dict) -> list[str]:
    """How ``state`` fails to fill ``target`` (both name -> tensor): one line
    each for missing keys, unused keys and shape mismatches; ``[]`` if it
    fits exactly."""
    missing = set(target) - set(state)
    unexpected = set(state) - set(target)
    shapes = [f'{k}: checkpoint {_shape(state[k])} vs model '
              f'{_shape(target[k])}' for k in set(target) & set(state)
              if _shape(state[k]) != _shape(target[k])]
    problems = []
    if missing:
        problems.append(f'{len(missing)} model keys missing from the '
                        f'checkpoint: {_describe(missing)}')
    if unexpected:
        problems.append(f'{len(unexpected)} checkpoint keys not used by the '
                        f'model: {_describe(unexpected)}')
    if shapes:
        problems.append(f'{len(shapes)} shape mismatches: '
                        f'{_describe(shapes, 6)}')
    return problems


def check_state_dict(model: nn.Module, state: dict, what: str) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``state`` fits exactly."""
    problems = state_dict_problems(model.state_dict(), state)
    if problems:
        raise CheckpointMismatchError(
            f'{what} does not match {type(model).__name__}:\n  - '
            + '\n  - '.join(problems))


def load_strict(model: nn.Module, state: dict, what: str) -> None:
    """Check, then ``load_state_dict(strict=True)``."""
    check_state_dict(model, state, what)
    model.load_state_dict(state, strict=True)


def load_release_file(path: str) -> tuple[OrderedDict, str]:
    """Read a released ``.pth.tar`` safely; return (state_dict, entry used).

    Loaded with ``weights_only=True``; only ``argparse.Namespace`` (timm's
    saved ``args``) is additionally allowed, for this call only.
    """
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f'checkpoint: no file at {path!r}') from None
    except Exception as e:  # unpickling refused: say what it carries
        raise CheckpointMismatchError(
            f'checkpoint {path!r} could not be read with weights_only=True '
            f'(it holds objects other than tensors): {e}') from e
    entry = 'raw'
    if isinstance(ckpt, dict):
        for entry in ('state_dict_ema', 'state_dict', 'model'):
            if isinstance(ckpt.get(entry), dict) and ckpt[entry]:
                ckpt = ckpt[entry]
                break
        else:
            entry = 'raw'
    if not isinstance(ckpt, dict) or not all(
            isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise CheckpointMismatchError(
            f'checkpoint {path!r}: expected a dict of tensors or a timm-style '
            'dict with "state_dict_ema"/"state_dict"')
    state = OrderedDict((strip_prefix(k, 'module.'), v)
                        for k, v in ckpt.items())
    return state, entry


def infer_arch(state: dict) -> Arch:
    """Read the architecture off a release-layout state dict's shapes.

    A layer ``blocks.s.i`` (s = 1..5) is MBConv ``k{K}e{E}`` with K the
    depthwise kernel size and E the expansion that gives the 1x1 width.
    """
    stages = []
    for s in range(1, NUM_STAGES + 1):
        ops, i = [], 0
        while f'blocks.{s}.{i}.conv_dw.weight' in state:
            dw = state[f'blocks.{s}.{i}.conv_dw.weight']
            pw = state[f'blocks.{s}.{i}.conv_pw.weight']
            mid, cin, k = pw.shape[0], pw.shape[1], dw.shape[-1]
            exps = [e for e in (4, 6) if make_divisible(cin * e, 8) == mid]
            op = f'k{k}e{exps[0]}' if exps else None
            if op not in MBCONV_OPS:
                raise CheckpointMismatchError(
                    f'blocks.{s}.{i}: kernel {k}, width {cin}->{mid} is not '
                    f'one of the ops {", ".join(MBCONV_OPS)}; pass --arch')
            ops.append(op)
            i += 1
        if not ops:
            raise CheckpointMismatchError(
                f'no layers for stage {s} (blocks.{s}.0.*): not a Cream '
                'release checkpoint, or pass --arch')
        stages.append(tuple(ops))
    return Arch(tuple(stages))


def load_pretrained(checkpoint: str, prefix: str | None = None,
                    map_location='cpu') -> dict:
    """State dict of an mmengine/mmpretrain checkpoint, cut to ``prefix``."""
    from mmengine.runner.checkpoint import _load_checkpoint
    import os.path as osp
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'init_cfg.checkpoint: no file at '
                                f'{checkpoint!r}')
    ckpt = _load_checkpoint(checkpoint, map_location=map_location)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    state = {strip_prefix(k, 'module.'): v for k, v in state.items()}
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state = {k[len(prefix):]: v for k, v in state.items()
                 if k.startswith(prefix)}
        if not state:
            raise CheckpointMismatchError(
                f'init_cfg.prefix {prefix!r}: no key of {checkpoint!r} starts '
                'with it')
    return state


def release_to_mmpretrain(state: dict) -> OrderedDict:
    """Release keys -> ``ImageClassifier`` keys (``backbone.``/``head.``)."""
    out = OrderedDict()
    for k, v in state.items():
        head = k.startswith(HEAD_PREFIXES)
        out[('head.' if head else 'backbone.') + k] = v
    return out


def convert_release(path: str, arch=None, num_classes: int | None = None):
    """Convert a released checkpoint; return (classifier_state, arch, info).

    The result is checked against a freshly built ``ImageClassifier`` with a
    :class:`CreamNet` backbone and :class:`CreamClsHead`: every key consumed,
    every target filled, every shape equal.
    """
    from mmpretrain.registry import MODELS

    from ..arch import parse_arch
    state, entry = load_release_file(path)
    arch = parse_arch(arch) if arch is not None else infer_arch(state)
    if num_classes is None:
        if 'classifier.weight' not in state:
            raise CheckpointMismatchError(
                f'{path!r} has no classifier.weight; not a release classifier')
        num_classes = state['classifier.weight'].shape[0]
    model = MODELS.build(dict(
        type='ImageClassifier', backbone=dict(type='CreamNet', arch=arch),
        head=dict(type='CreamClsHead', num_classes=num_classes)))
    converted = release_to_mmpretrain(state)
    check_state_dict(model, converted, f'converted {path!r}')
    info = dict(arch=format_arch(arch), source_entry=entry,
                num_classes=num_classes, num_keys=len(converted))
    return converted, arch, info
