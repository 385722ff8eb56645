"""Conversion of AlphaNet's / AttentiveNAS's released checkpoints.

AlphaNet (facebookresearch/AlphaNet) reuses AttentiveNAS's model code
(``models/attentive_nas_dynamic_model.py``, ``models/modules/*_layers.py``)
and releases one *supernet* checkpoint, ``alphanet_pretrained.pth.tar``
(``{'state_dict': {'module.' + key: tensor}, 'args': ..., ...}``); its
A0-A6 are subnets sliced from it (``get_active_subnet``) and evaluated after
BN re-calibration. Two key layouts are read:

``supernet`` -- ``AttentiveNasDynamicModel.state_dict()`` (the release)::

    first_conv.conv.conv.weight, first_conv.bn.bn.*
    blocks.N.mobile_inverted_conv.inverted_bottleneck.{conv.conv, bn.bn}.*
    blocks.N.mobile_inverted_conv.depth_conv.{conv.conv, bn.bn}.*
    blocks.N.mobile_inverted_conv.depth_conv.se.fc.{reduce, expand}.*
    blocks.N.mobile_inverted_conv.point_linear.{conv.conv, bn.bn}.*
    blocks.N.shortcut.conv.conv.weight
    *.bn.bn_tracking.{0,1}.*            (tracking BNs, unused at inference)
    last_conv.final_expand_layer.{conv.conv, bn.bn}.*
    last_conv.feature_mix_layer.conv.conv.weight
    classifier.linear.linear.{weight, bias}

  ``N`` runs over all blocks of the paper space (stage maxima 2, 5, 6, 6, 8,
  8, 2). The keys map one-to-one onto :class:`AttentiveSupernet` +
  :class:`AttentiveDynamicHead` (same maximal shapes), which then export the
  requested arch -- leftmost channels, centre-cropped kernels, first ``d``
  blocks: exactly AttentiveNAS's ``get_active_subnet``.

``static`` -- ``AttentiveNasStaticModel.state_dict()`` (one subnet): the same
  names without the dynamic wrappers (``conv.weight``, ``bn.*``,
  ``classifier.linear.*``), ``blocks.N`` numbering only the subnet's blocks,
  and ``last_conv.0`` / ``last_conv.2`` for the final expand / feature mix.
  The arch is read off the shapes when unambiguous.

Keys dropped on purpose (counted in ``info['discarded']``): ``bn_tracking``
buffers and the 1x1 convs of shortcuts that are the identity (AttentiveNAS
builds a shortcut conv in every block and skips it when the shape is
unchanged). Any other key that has no target, or target that is not filled,
is an error listing the keys.
"""
from __future__ import annotations

import re
from collections import OrderedDict

import torch

from .attentive_arch import (ALPHANET_ARCHS, AttentiveArch, AttentiveSpace,
                             format_attentive_arch, parse_attentive_arch)
from .blocks import make_divisible
from .checkpoint import CheckpointMismatchError, _describe, check_state_dict

PAPER = AttentiveSpace()
# inside a block: AttentiveNAS name -> ours (MBConv / depthwise-separable)
_IR = {'mobile_inverted_conv.inverted_bottleneck.conv.': 'conv_pw.',
       'mobile_inverted_conv.inverted_bottleneck.bn.': 'bn1.',
       'mobile_inverted_conv.depth_conv.conv.': 'conv_dw.',
       'mobile_inverted_conv.depth_conv.bn.': 'bn2.',
       'mobile_inverted_conv.depth_conv.se.fc.reduce.': 'se.conv_reduce.',
       'mobile_inverted_conv.depth_conv.se.fc.expand.': 'se.conv_expand.',
       'mobile_inverted_conv.point_linear.conv.': 'conv_pwl.',
       'mobile_inverted_conv.point_linear.bn.': 'bn3.',
       'shortcut.conv.': 'shortcut.conv.'}
_DS = {**{k: v for k, v in _IR.items() if 'inverted_bottleneck' not in k},
       'mobile_inverted_conv.depth_conv.bn.': 'bn1.',
       'mobile_inverted_conv.point_linear.conv.': 'conv_pw.',
       'mobile_inverted_conv.point_linear.bn.': 'bn2.'}
_UNWRAP = (('.conv.conv.', '.conv.'), ('.bn.bn.', '.bn.'),
           ('.linear.linear.', '.linear.'),
           ('last_conv.final_expand_layer.', 'last_conv.0.'),
           ('last_conv.feature_mix_layer.', 'last_conv.2.'))
_BLOCK = re.compile(r'blocks\.(\d+)\.(.*)')


def is_alphanet_layout(state: dict) -> bool:
    """Whether ``state`` has AttentiveNAS's key names."""
    return any('mobile_inverted_conv.' in k for k in state)


def detect_layout(state: dict) -> str:
    """``'supernet'`` (dynamic wrappers present) or ``'static'``."""
    if not is_alphanet_layout(state):
        raise CheckpointMismatchError(
            'not an AlphaNet/AttentiveNAS checkpoint: no '
            '"blocks.N.mobile_inverted_conv.*" key')
    return ('supernet' if any('.conv.conv.' in k or 'bn_tracking' in k
                              for k in state) else 'static')


def _unwrap(key: str) -> str:
    for old, new in _UNWRAP:
        key = key.replace(old, new)
    return key


def _flat_index(depths) -> list[tuple[int, int]]:
    return [(s, i) for s, d in enumerate(depths) for i in range(d)]


def _rename(state: dict, depths, expands, backbone: dict, head: dict):
    """Map AttentiveNAS keys (unwrapped) onto our backbone/head keys.

    ``depths``/``expands`` give the block numbering and block types;
    ``backbone``/``head`` are the target state dicts (to see which shortcut
    convs exist). Returns (backbone_state, head_state, discarded, unknown).
    """
    where = _flat_index(depths)
    tail = f'blocks.{len(depths)}.0.'
    fixed = {'first_conv.conv.': 'first_conv.conv.',
             'first_conv.bn.': 'first_conv.bn1.',
             'last_conv.0.conv.': tail + 'conv.',
             'last_conv.0.bn.': tail + 'bn1.'}
    heads = {'last_conv.2.conv.': 'conv_head.',
             'classifier.linear.': 'classifier.'}
    out_b, out_h, discarded, unknown = OrderedDict(), OrderedDict(), [], []
    for key, value in state.items():
        if 'bn_tracking.' in key:
            discarded.append(key)
            continue
        k = _unwrap(key)
        m = _BLOCK.fullmatch(k)
        target = None
        if m and int(m.group(1)) < len(where):
            s, i = where[int(m.group(1))]
            table = _DS if expands[s] == (1, ) or expands[s] == 1 else _IR
            for old, new in table.items():
                if m.group(2).startswith(old):
                    target = (out_b, f'blocks.{s}.{i}.{new}'
                              + m.group(2)[len(old):])
                    break
            if target and '.shortcut.' in target[1] and \
                    target[1] not in backbone:
                discarded.append(key)  # identity shortcut: conv unused
                continue
        else:
            for table, out in ((fixed, out_b), (heads, out_h)):
                for old, new in table.items():
                    if k.startswith(old):
                        target = (out, new + k[len(old):])
        if target is None:
            unknown.append(key)
        else:
            target[0][target[1]] = value
    return out_b, out_h, discarded, unknown


def _numbering(depths) -> str:
    starts = [sum(depths[:s]) for s in range(len(depths))]
    return 'i + ' + '/'.join(str(x) for x in starts) + ' for s = 0..' + str(
        len(depths) - 1)


def _raise_unknown(unknown, path):
    if unknown:
        raise CheckpointMismatchError(
            f'{path!r}: {len(unknown)} checkpoint keys have no place in the '
            f'AttentiveNAS layout: {_describe(unknown)}')


def _block_shapes(state: dict) -> list[dict]:
    """Per static block: cin, mid, cout, kernel, se, bottleneck."""
    out, n = [], 0
    pre = 'blocks.{}.mobile_inverted_conv.'
    while pre.format(n) + 'depth_conv.conv.weight' in state:
        p = pre.format(n)
        dw = state[p + 'depth_conv.conv.weight']
        pl = state[p + 'point_linear.conv.weight']
        ib = state.get(p + 'inverted_bottleneck.conv.weight')
        out.append(dict(cin=ib.shape[1] if ib is not None else dw.shape[0],
                        mid=dw.shape[0], cout=pl.shape[0], k=dw.shape[-1],
                        se=p + 'depth_conv.se.fc.reduce.weight' in state,
                        ib=ib is not None))
        n += 1
    return out


def infer_static_arch(state: dict, resolution: int | None = None,
                      space: AttentiveSpace = PAPER) -> AttentiveArch:
    """Read the arch of a ``static``-layout (unwrapped) state dict off its
    shapes: every split of its flat blocks into the space's stages that fits
    widths, depths, kernels, expansions and SE. One split or an error."""
    blocks = _block_shapes(state)
    w0 = state['first_conv.conv.weight'].shape[0]
    w_last = state['last_conv.2.conv.weight'].shape[0]
    found = []

    def fits(s, run, prev, c):
        k, es = run[0]['k'], space.stage_expands[s]
        if c not in space.stage_widths[s] or k not in space.stage_kernels[s]:
            return None
        cins = [prev] + [c] * (len(run) - 1)
        if any(b['cout'] != c or b['k'] != k or b['cin'] != ci
               or b['se'] != space.stage_se[s] for b, ci in zip(run, cins)):
            return None
        if es == (1, ):
            return 1 if not any(b['ib'] for b in run) else None
        ok = [e for e in es if all(
            b['ib'] and b['mid'] == make_divisible(round(b['cin'] * e), 8)
            for b in run)]
        return ok[0] if len(ok) == 1 else None

    def walk(s, j, prev, acc):
        if s == space.num_stages:
            if j == len(blocks):
                found.append(acc)
            return
        for d in space.stage_depths[s]:
            run = blocks[j:j + d]
            if len(run) < d:
                break
            c = run[0]['cout']
            e = fits(s, run, prev, c)
            if e is not None:
                walk(s + 1, j + d, c, acc + [(c, d, run[0]['k'], e)])

    walk(0, 0, w0, [])
    if len(found) != 1:
        why = ('no split of its blocks fits the AlphaNet space' if not found
               else f'{len(found)} splits of its blocks fit')
        raise CheckpointMismatchError(
            f'cannot read the arch off the weights ({len(blocks)} blocks): '
            f'{why}; pass --arch')
    (st, ) = found
    width = (w0, *(c for c, *_ in st), w_last)
    geometry = dict(width=width, depth=tuple(d for _, d, _, _ in st),
                    kernel=tuple(k for *_, k, _ in st),
                    expand=tuple(e for *_, e in st))
    if resolution is None:
        named = [a for a in ALPHANET_ARCHS.values()
                 if all(getattr(a, f) == v for f, v in geometry.items())]
        if not named:
            raise CheckpointMismatchError(
                'the arch read off the weights is no released AlphaNet '
                'model, so its resolution is unknown; pass --resolution')
        resolution = named[0].resolution
    return AttentiveArch(resolution, **geometry)


def _classifier(arch: AttentiveArch, num_classes: int):
    from mmpretrain.registry import MODELS
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='AttentiveNet', arch=format_attentive_arch(arch),
                      init_cfg=None),
        head=dict(type='CreamClsHead', num_classes=num_classes,
                  in_channels=arch.width[-2] * PAPER.final_expand,
                  head_channels=arch.width[-1], conv_bias=False,
                  init_cfg=None)))


def _prefixed(backbone: dict, head: dict) -> OrderedDict:
    return OrderedDict([*((f'backbone.{k}', v) for k, v in backbone.items()),
                        *((f'head.{k}', v) for k, v in head.items())])


def _from_supernet(state, arch, num_classes, path):
    from .attentive_supernet import AttentiveDynamicHead, AttentiveSupernet
    if arch is None:
        raise CheckpointMismatchError(
            f'{path!r} is an AlphaNet supernet (it holds every subnet): pass '
            f'--arch, e.g. one of {", ".join(ALPHANET_ARCHS)}')
    arch = parse_attentive_arch(arch, PAPER)
    supernet = AttentiveSupernet(init_cfg=None)
    head = AttentiveDynamicHead(num_classes, init_cfg=None)
    b, h, discarded, unknown = _rename(
        state, [max(d) for d in PAPER.stage_depths], PAPER.stage_expands,
        supernet.state_dict(), head.state_dict())
    _raise_unknown(unknown, path)
    try:
        check_state_dict(supernet, b, f'backbone of supernet {path!r}')
        check_state_dict(head, h, f'head of supernet {path!r}')
    except CheckpointMismatchError as e:
        raise CheckpointMismatchError(
            f'{e}\n  (names are ours: blocks.s.i is AttentiveNAS\'s blocks.N '
            f'with N = {_numbering([max(d) for d in PAPER.stage_depths])})'
        ) from e
    supernet.load_state_dict(b, strict=True)
    head.load_state_dict(h, strict=True)
    net, sub_head = supernet.export(arch), head.export(arch)
    return arch, _prefixed(net.state_dict(), sub_head.state_dict()), discarded


def _from_static(state, arch, num_classes, path, resolution):
    if arch is None:
        arch = infer_static_arch(state, resolution)
    else:
        arch = parse_attentive_arch(arch, PAPER)
    target = _classifier(arch, num_classes)
    tb = {k[len('backbone.'):]: v for k, v in target.state_dict().items()
          if k.startswith('backbone.')}
    b, h, discarded, unknown = _rename(state, arch.depth, arch.expand, tb,
                                       {})
    _raise_unknown(unknown, path)
    return arch, _prefixed(b, h), discarded


def convert_alphanet(state: dict, arch=None, num_classes: int | None = None,
                     path: str = 'checkpoint', resolution: int | None = None):
    """Convert an AlphaNet/AttentiveNAS state dict (``module.`` already
    stripped) to an mmpretrain ``ImageClassifier(AttentiveNet,
    CreamClsHead)`` state dict; return (state, arch, info).

    The result is checked key by key and shape by shape against a freshly
    built classifier of ``arch``.
    """
    layout = detect_layout(state)
    state = OrderedDict((_unwrap(k), v) if layout == 'static' else (k, v)
                        for k, v in state.items())
    if num_classes is None:
        w = [v for k, v in state.items()
             if _unwrap(k) == 'classifier.linear.weight']
        if not w:
            raise CheckpointMismatchError(
                f'{path!r} has no classifier.linear(.linear).weight; not an '
                'AttentiveNAS classifier')
        num_classes = w[0].shape[0]
    if layout == 'supernet':
        arch, out, discarded = _from_supernet(state, arch, num_classes, path)
    else:
        arch, out, discarded = _from_static(state, arch, num_classes, path,
                                            resolution)
    check_state_dict(_classifier(arch, num_classes), out,
                     f'converted {path!r} ({layout} layout)')
    info = dict(arch=format_attentive_arch(arch), layout=layout,
                num_classes=num_classes, num_keys=len(out),
                discarded=len(discarded))
    return out, arch, info


#: how to get a weights-only file out of a checkpoint carrying AttentiveNAS's
#: pickled training config (run once, where the file is trusted)
EXTRACT_HINT = (
    "python -c \"import torch; torch.save(torch.load('SRC', "
    "map_location='cpu', weights_only=False)['state_dict'], "
    "'alphanet_state_dict.pth')\" (with AttentiveNAS's utils/ importable)")


def load_alphanet_file(path: str):
    """Read an AlphaNet/AttentiveNAS ``.pth.tar`` with ``weights_only=True``;
    return (state_dict without ``module.``, entry used).

    AttentiveNAS's ``save_checkpoint`` also pickles ``args`` (its
    ``utils.config.Config``, a dict subclass), which ``weights_only``
    unpickling refuses (it cannot rebuild dict subclasses); such a file
    fails with a message telling how to extract its ``state_dict`` once.
    """
    from .checkpoint import load_release_file
    try:
        return load_release_file(path)
    except CheckpointMismatchError as e:
        if 'weights_only' not in str(e):
            raise
        raise CheckpointMismatchError(
            f'{e}\nAttentiveNAS/AlphaNet checkpoints may pickle their '
            'training config ("args"); extract the weights once, where you '
            'trust the file: ' + EXTRACT_HINT.replace('SRC', path)
            + ', and convert that file') from e
