"""Conversion of AlphaNet / AttentiveNAS checkpoints (their key layout is
written here from our models by the inverse mapping, AttentiveNAS's
``models/attentive_nas_dynamic_model.py`` / ``static_layers.py`` names)."""
import sys
import types

import pytest
import torch
from mmdet.registry import MODELS as DET
from mmpretrain.registry import MODELS as CLS

from cream_mm.models.alphanet_checkpoint import (convert_alphanet,
                                                 load_alphanet_file)
from cream_mm.models.attentive_arch import (ALPHANET_ARCHS, AttentiveSpace,
                                            parse_attentive_arch)
from cream_mm.models.attentive_net import AttentiveNet
from cream_mm.models.attentive_supernet import (AttentiveDynamicHead,
                                                AttentiveSupernet)
from cream_mm.models.checkpoint import CheckpointMismatchError
from cream_mm.models.heads import CreamClsHead
from tools.convert_official_checkpoint import main as convert_main

MAX_DEPTHS = [max(d) for d in AttentiveSpace().stage_depths]  # 2,5,6,6,8,8,2
IR = {'conv_pw': 'inverted_bottleneck.conv', 'bn1': 'inverted_bottleneck.bn',
      'conv_dw': 'depth_conv.conv', 'bn2': 'depth_conv.bn',
      'se.conv_reduce': 'depth_conv.se.fc.reduce',
      'se.conv_expand': 'depth_conv.se.fc.expand',
      'conv_pwl': 'point_linear.conv', 'bn3': 'point_linear.bn'}
DS = {'conv_dw': 'depth_conv.conv', 'bn1': 'depth_conv.bn',
      'conv_pw': 'point_linear.conv', 'bn2': 'point_linear.bn'}
BN_BUFFERS = ('running_mean', 'running_var', 'num_batches_tracked')


def _theirs(key, depths, dynamic):
    """Our backbone/head key -> AttentiveNAS's (supernet or static)."""
    w = (lambda m: f'{m}.{m.split(".")[-1]}') if dynamic else (lambda m: m)
    head, _, leaf = key.rpartition('.')
    n = len(depths)
    if head == 'first_conv.conv':
        return f'first_conv.{w("conv")}.{leaf}'
    if head == 'first_conv.bn1':
        return f'first_conv.{w("bn")}.{leaf}'
    if head in (f'blocks.{n}.0.conv', f'blocks.{n}.0.bn1'):
        last = 'last_conv.final_expand_layer' if dynamic else 'last_conv.0'
        mod = head.rsplit('.', 1)[1].replace('bn1', 'bn')
        return f'{last}.{w(mod)}.{leaf}'
    if head == 'conv_head':
        mix = 'last_conv.feature_mix_layer' if dynamic else 'last_conv.2'
        return f'{mix}.{w("conv")}.{leaf}'
    if head == 'classifier':
        return f'classifier.{w("linear")}.{leaf}'
    _, s, i, rest = head.split('.', 3)
    flat = sum(depths[:int(s)]) + int(i)
    if rest == 'shortcut.conv':
        return f'blocks.{flat}.shortcut.{w("conv")}.{leaf}'
    mod = (DS if int(s) == 0 else IR)[rest]
    mod = mod if '.se.' in mod else w(mod)
    return f'blocks.{flat}.mobile_inverted_conv.{mod}.{leaf}'


def _randomise(*modules):
    torch.manual_seed(0)
    for m in modules:
        for name, t in m.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if 'running_var' in name
                        else torch.randn_like(t) * 0.1)


def _fake_args_module():
    """AttentiveNAS's ``utils.config`` (the pickled ``args`` object)."""
    mod = types.ModuleType('utils.config')

    class AttrDict(dict):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.__dict__ = self
    AttrDict.__module__, AttrDict.__qualname__ = 'utils.config', 'AttrDict'

    class Config(AttrDict):
        pass
    Config.__module__, Config.__qualname__ = 'utils.config', 'Config'
    mod.AttrDict, mod.Config = AttrDict, Config
    return mod


@pytest.fixture(scope='module')
def supernet_ckpt(tmp_path_factory):
    """A release-like AlphaNet supernet checkpoint (1000 classes)."""
    net, head = AttentiveSupernet(init_cfg=None), AttentiveDynamicHead(1000)
    _randomise(net, head)
    ours = {**net.state_dict(), **head.state_dict()}
    theirs = {_theirs(k, MAX_DEPTHS, True): v for k, v in ours.items()}
    extra = []
    for k in list(theirs):  # AttentiveNAS's extras
        if k.endswith('.bn.bn.weight'):
            c = theirs[k].shape[0]
            for t in range(2):
                extra += [f'{k[:-len("bn.weight")]}bn_tracking.{t}.{b}'
                          for b in BN_BUFFERS]
                theirs.update({extra[-3]: torch.zeros(c),
                               extra[-2]: torch.ones(c),
                               extra[-1]: torch.tensor(0)})
    flat = 0
    for s, d in enumerate(MAX_DEPTHS):
        for i in range(d):
            if i > 0:  # a shortcut conv in every block (identity here)
                key = f'blocks.{flat}.shortcut.conv.conv.weight'
                c = net.space.stage_widths[s][-1]
                theirs[key] = torch.randn(c, c, 1, 1)
                extra.append(key)
            flat += 1
    mod = _fake_args_module()
    saved = {n: sys.modules.get(n) for n in ('utils', 'utils.config')}
    pkg = types.ModuleType('utils')
    pkg.config = mod
    sys.modules.update({'utils': pkg, 'utils.config': mod})
    tmp = tmp_path_factory.mktemp('alphanet')
    path, with_args = tmp / 'alphanet.pth.tar', tmp / 'with_args.pth.tar'
    state = {'module.' + k: v for k, v in theirs.items()}
    try:  # AttentiveNAS's save_checkpoint (legacy format)
        args = mod.Config({'arch': 'attentive_nas_dynamic_model',
                           'supernet_config': {'use_v3_head': True}})
        with open(with_args, 'wb') as f:
            torch.save({'epoch': 360, 'args': args, 'state_dict': state,
                        'optimizer': {'state': {}}}, f,
                       _use_new_zipfile_serialization=False)
        with open(path, 'wb') as f:
            torch.save({'epoch': 360, 'state_dict': state}, f,
                       _use_new_zipfile_serialization=False)
    finally:  # the converter never imports AttentiveNAS's code
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n)
            else:
                sys.modules[n] = m
    return path, net, head, theirs, len(extra), with_args


def test_supernet_release_sliced_to_a0(supernet_ckpt, tmp_path):
    path, net, head, theirs, n_extra, _ = supernet_ckpt
    cls_out, bb_out = tmp_path / 'cls.pth', tmp_path / 'bb.pth'
    convert_main([str(path), '--layout', 'alphanet', '--arch', 'alphanet-a0',
                  '--out-cls', str(cls_out), '--out-backbone', str(bb_out)])
    ckpt = torch.load(cls_out, weights_only=True)
    state = ckpt['state_dict']
    assert ckpt['meta']['layout'] == 'supernet'
    assert ckpt['meta']['bn_recalibration'] == 'required'
    # AttentiveNAS's get_active_subnet slicing, written out: mb2's first
    # block (blocks.2; cin 16, expand 4 -> 64 mid), kernel 5 -> 3 centre
    dw = theirs['blocks.2.mobile_inverted_conv.depth_conv.conv.conv.weight']
    assert torch.equal(state['backbone.blocks.1.0.conv_dw.weight'],
                       dw[:64, :, 1:4, 1:4])
    # mb3's first block (blocks.7; cin 24 -> 96 mid, SE 24)
    se = theirs['blocks.7.mobile_inverted_conv.depth_conv.se.fc.reduce.weight']
    assert torch.equal(state['backbone.blocks.2.0.se.conv_reduce.weight'],
                       se[:24, :96])
    rv = theirs['blocks.7.mobile_inverted_conv.point_linear.bn.bn.running_var']
    assert torch.equal(state['backbone.blocks.2.0.bn3.running_var'], rv[:32])
    mix = theirs['last_conv.feature_mix_layer.conv.conv.weight']
    assert torch.equal(state['head.conv_head.weight'], mix[:1792, :1296])
    fc = theirs['classifier.linear.linear.weight']
    assert torch.equal(state['head.classifier.weight'], fc[:, :1792])
    # the classifier equals the supernet's A0 path
    clf = CLS.build(dict(
        type='ImageClassifier', backbone=dict(type='AttentiveNet',
                                              arch='alphanet-a0'),
        head=dict(type='CreamClsHead', num_classes=1000, conv_bias=False,
                  in_channels=1296, head_channels=1792)))
    clf.load_state_dict(state, strict=True)
    clf.eval(), net.eval(), head.eval()
    head.set_path('alphanet-a0')
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = head(net(x, 'alphanet-a0'))
        assert torch.allclose(clf(x), ref, atol=1e-5)
    # the backbone file drives mmdet's strict Pretrained init
    bb = torch.load(bb_out, weights_only=True)['state_dict']
    assert all(k.startswith('backbone.') for k in bb)
    det = DET.build(dict(type='AttentiveNet', arch='alphanet-a0',
                         out_indices=(2, 4, 6),
                         init_cfg=dict(type='Pretrained', prefix='backbone.',
                                       checkpoint=str(bb_out))))
    det.init_weights()
    assert torch.equal(det.blocks[1][0].conv_dw.weight, dw[:64, :, 1:4, 1:4])
    # every key consumed: mapped, or one of the extras we added
    src, entry = load_alphanet_file(str(path))
    assert entry == 'state_dict' and len(src) == len(theirs)
    _, _, info = convert_alphanet(src, 'alphanet-a0')
    assert info['discarded'] == n_extra


def test_pickled_args_refused_with_the_extraction_hint(supernet_ckpt):
    *_, with_args = supernet_ckpt
    with pytest.raises(CheckpointMismatchError,
                       match=r"weights_only=False\)\['state_dict'\]"):
        load_alphanet_file(str(with_args))


def test_supernet_needs_arch_and_lists_bad_keys(supernet_ckpt):
    path, *_ = supernet_ckpt
    src, _ = load_alphanet_file(str(path))
    with pytest.raises(CheckpointMismatchError, match='pass --arch'):
        convert_alphanet(dict(src))
    bad = dict(src)
    bad['blocks.3.mobile_inverted_conv.extra.weight'] = torch.zeros(1)
    del bad['blocks.9.mobile_inverted_conv.point_linear.bn.bn.bias']
    with pytest.raises(CheckpointMismatchError,
                       match='blocks.3.mobile_inverted_conv.extra.weight'):
        convert_alphanet(bad, 'alphanet-a0')
    del bad['blocks.3.mobile_inverted_conv.extra.weight']
    with pytest.raises(CheckpointMismatchError,
                       match=r'missing[^\n]*blocks\.2\.2\.bn3\.bias'):
        convert_alphanet(bad, 'alphanet-a0')


def _static(arch, num_classes=10):
    """A subnet in AttentiveNasStaticModel's layout (a ShortcutLayer conv
    in every block, used only where the shape changes)."""
    arch = parse_attentive_arch(arch)
    net = AttentiveNet(arch, init_cfg=None)
    head = CreamClsHead(num_classes, arch.width[-2] * 6, arch.width[-1],
                        conv_bias=False)
    _randomise(net, head)
    ours = {**net.state_dict(), **head.state_dict()}
    theirs = {_theirs(k, list(arch.depth), False): v
              for k, v in ours.items()}
    flat = 0
    for s, d in enumerate(arch.depth):
        for i in range(d):
            key = f'blocks.{flat}.shortcut.conv.weight'
            if key not in theirs:
                c = arch.width[s + 1]
                theirs[key] = torch.randn(c, c, 1, 1)
            flat += 1
    return ours, theirs


@pytest.mark.parametrize('name', ['alphanet-a2', 'alphanet-a5-base'])
def test_static_layout_arch_read_off_the_weights(name):
    ours, theirs = _static(name)
    state, arch, info = convert_alphanet(theirs)
    assert arch == ALPHANET_ARCHS[name]  # resolution from the release
    assert info['layout'] == 'static' and info['num_classes'] == 10
    assert info['discarded'] == sum(arch.depth) - sum(
        'shortcut' in k for k in ours)
    prefix = {k: ('head.' if k.startswith(('conv_head', 'classifier'))
                  else 'backbone.') + k for k in ours}
    assert set(state) == set(prefix.values())
    assert all(torch.equal(state[prefix[k]], v) for k, v in ours.items())


def test_static_layout_unknown_resolution_and_ambiguity():
    arch = 'r256|w24.24.32.40.72.128.216.216.1984|d2.3.4.4.5.4.2|' \
           'k5.3.5.3.5.3.5|e1.5.6.4.5.6.6'
    _, theirs = _static(arch)
    with pytest.raises(CheckpointMismatchError, match='--resolution'):
        convert_alphanet(theirs)
    _, got, _ = convert_alphanet(theirs, resolution=256)
    assert got == parse_attentive_arch(arch)
    # mb6 and mb7 both 216 wide, kernel 3: the split 4+2 / 5+1 is ambiguous
    amb = arch.replace('k5.3.5.3.5.3.5', 'k5.3.5.3.5.3.3')
    _, theirs = _static(amb)
    with pytest.raises(CheckpointMismatchError, match='2 splits'):
        convert_alphanet(theirs, resolution=256)
    _, got, _ = convert_alphanet(theirs, arch=amb)
    assert got == parse_attentive_arch(amb)
