"""The AttentiveNAS / AlphaNet space: arch notation, sliced supernet vs the
exported fixed AttentiveNet, FLOPs counter, BN re-calibration."""
import random

import pytest
import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer

from cream_mm.arch import ArchError
from cream_mm.evaluation.ranking import recalibrate_bn
from cream_mm.models import (ALPHANET_ARCHS, AttentiveDynamicHead,
                             AttentiveNet, AttentiveSpace, AttentiveSupernet,
                             CreamClsHead, parse_attentive_arch)
from cream_mm.models.attentive_arch import ALPHANET_MFLOPS
from cream_mm.models.attentive_complexity import attentive_cost

TINY = dict(resolutions=(32, 48, 64))
A0 = ('r192|w16.16.24.32.64.112.192.216.1792|d1.3.3.3.3.3.1|'
      'k3.3.3.3.3.3.3|e1.4.4.4.4.6.6')


def _randomize_bn(net):
    g = torch.Generator().manual_seed(3)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * .2 - .1)
            m.running_var.copy_(torch.rand(n, generator=g) + .5)
            m.weight.data.copy_(torch.rand(n, generator=g) + .5)
            m.bias.data.copy_(torch.rand(n, generator=g) * .2 - .1)


@pytest.fixture(scope='module')
def supernet():
    torch.manual_seed(0)
    net = AttentiveSupernet(space=TINY, init_cfg=None)
    _randomize_bn(net)
    return net.eval()


def _random_arch(space, seed):
    rng = random.Random(seed)
    return space.from_values([rng.choice(c) for c in space.gene_choices()])


# ------------------------------------------------------------ notation
def test_a0_string_round_trips_and_names_resolve():
    a = parse_attentive_arch(A0)
    assert a == ALPHANET_ARCHS['alphanet-a0']
    assert str(a) == A0
    assert parse_attentive_arch('AlphaNet-A0') == a
    space = AttentiveSpace()
    for name, arch in ALPHANET_ARCHS.items():
        assert parse_attentive_arch(str(arch), space) == arch, name
    for seed in range(20):
        arch = _random_arch(space, seed)
        assert parse_attentive_arch(str(arch), space) == arch


def test_attentive_nas_dict_form():
    a = parse_attentive_arch(dict(
        resolution=192, width=[16, 16, 24, 32, 64, 112, 192, 216, 1792],
        kernel_size=[3] * 7, expand_ratio=[1, 4, 4, 4, 4, 6, 6],
        depth=[1, 3, 3, 3, 3, 3, 1]))
    assert a == ALPHANET_ARCHS['alphanet-a0']


@pytest.mark.parametrize('text,msg', [
    ('r192|w16', 'expected 5 "|"-separated fields'),
    ('alphanet-a9', 'named model: alphanet-a0'),
    (A0.replace('|k3.3', '|kx.3'), "kernel field k'x.3"),
    (A0.replace('d1.3.3', 'd1.3'), '9 widths, 6 depths'),
    (A0.replace('e1.4.4.4.4.6.6', 'e1.4.4.4.4.6.7'),
     'expand[6] (mb7)=7 not allowed; allowed: 6'),
    (A0.replace('w16.16.24', 'w16.16.28'),
     'width[2] (mb2)=28 not allowed; allowed: 24, 32'),
    (A0.replace('r192', 'r200'), 'resolution=200 not allowed; allowed: '
     '192, 224, 256, 288'),
])
def test_parser_names_bad_field_and_allowed_values(text, msg):
    with pytest.raises(ArchError, match=None) as err:
        parse_attentive_arch(text, AttentiveSpace())
    assert msg in str(err.value), str(err.value)


def test_space_rejects_mixed_expand_one():
    with pytest.raises(ArchError, match='mb2 expands'):
        AttentiveSpace(stage_expands=((1, ), (1, 4), (4, ), (4, ), (4, ),
                                      (6, ), (6, )))


# ------------------------------------------------ supernet == exported
@pytest.mark.parametrize('which', ['max', 'min', 'rand0', 'rand1'])
@pytest.mark.parametrize('size', [32, 48])
def test_path_forward_equals_exported_child(supernet, which, size):
    sp = supernet.space
    arch = {'max': sp.extreme(True), 'min': sp.extreme(False)}.get(
        which) or _random_arch(sp, int(which[-1]) + size)
    x = torch.randn(2, 3, size, size)
    supernet.set_path(arch)
    with torch.no_grad():
        ours = supernet(x)[-1]
        child = supernet.export(arch).eval()
        theirs = child(x)[-1]
    assert ours.shape == theirs.shape == (
        2, arch.width[-2] * 6, *theirs.shape[2:])
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_export_keys_are_the_fixed_nets_and_strict(supernet):
    arch = _random_arch(supernet.space, 7)
    child = supernet.export(arch)
    fresh = AttentiveNet(str(arch), init_cfg=None)
    assert list(child.state_dict()) == list(fresh.state_dict())
    assert set(child.state_dict()) <= set(supernet.state_dict())
    fresh.load_state_dict(child.state_dict(), strict=True)
    cfg = supernet.backbone_cfg(arch)
    assert cfg == dict(type='AttentiveNet', arch=str(arch))
    # a stage's unused deeper blocks are not in the child
    assert f'blocks.4.{arch.depth[4]}.conv_pw.weight' not in child.state_dict()


def test_out_indices_give_stage_features(supernet):
    net = AttentiveSupernet(space=TINY, out_indices=(2, 4, 6), init_cfg=None)
    net.load_state_dict(supernet.state_dict())
    arch = _random_arch(net.space, 3)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = net.eval()(x, arch)
        child = net.export(arch).eval()
        theirs = child(x)
    assert [f.shape[1] for f in feats] == [arch.width[3], arch.width[5],
                                           arch.width[7]]
    assert [f.shape[-1] for f in feats] == [8, 4, 2]
    assert child.out_indices == (2, 4, 6)
    for a, b in zip(feats, theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_functional_call_reads_parameters_at_forward(supernet):
    arch = _random_arch(supernet.space, 11)
    x = torch.randn(1, 3, 32, 32)
    params = {n: p.detach() * 1.5 for n, p in supernet.named_parameters()}
    with torch.no_grad():
        merged = torch.func.functional_call(supernet, params, (x, ),
                                            {'arch': arch})[-1]
        base = supernet(x, arch)[-1]
        scaled = AttentiveSupernet(space=TINY, init_cfg=None).eval()
        scaled.load_state_dict({**supernet.state_dict(), **params})
        want = scaled(x, arch)[-1]
    assert not torch.allclose(merged, base)
    torch.testing.assert_close(merged, want, rtol=0, atol=0)


def test_dynamic_head_export_matches(supernet):
    head = AttentiveDynamicHead(10, in_channels=224 * 6, head_channels=1984)
    arch = _random_arch(supernet.space, 5)
    x = torch.randn(2, 3, 48, 48)
    head.set_path(arch)
    with torch.no_grad():
        ours = head(supernet(x, arch))
        fixed = head.export(arch)
        theirs = fixed(supernet.export(arch).eval()(x))
    assert isinstance(fixed, CreamClsHead) and fixed.conv_head.bias is None
    assert fixed.conv_head.out_channels == arch.width[-1]
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


# ------------------------------------------------------ BN recalibration
def test_recalibration_through_slicing_equals_on_the_child(supernet):
    net = AttentiveSupernet(space=TINY, init_cfg=None)
    net.load_state_dict(supernet.state_dict())
    arch = _random_arch(net.space, 9)
    child = net.export(arch)  # before: stale statistics
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(4, 3, 32, 32, generator=g), None)
               for _ in range(3)]
    net.set_path(arch)
    recalibrate_bn(net, batches)
    recalibrate_bn(child, batches)
    after = net.export(arch).state_dict()
    for k, v in child.state_dict().items():
        torch.testing.assert_close(after[k], v, rtol=1e-6, atol=1e-6,
                                   msg=k)
    assert child.first_conv.bn1.num_batches_tracked == 3
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x)[-1], child(x)[-1], rtol=0,
                                   atol=1e-5)
    # the statistics really moved (stale ones were random)
    assert not torch.allclose(
        after['first_conv.bn1.running_mean'],
        supernet.state_dict()['first_conv.bn1.running_mean'][
            :arch.width[0]])


# ------------------------------------------------------------- fixed net
def test_both_registries_build_attentive_net():
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as CLS
    for reg in (CLS, DET):
        net = reg.build(dict(type='AttentiveNet', arch='alphanet-a0',
                             out_indices=(2, 4, 6)))
        feats = net(torch.randn(1, 3, 64, 64))
        assert [f.shape[1] for f in feats] == [32, 112, 216]


def test_frozen_stages_and_bad_indices():
    net = AttentiveNet('alphanet-a0', frozen_stages=2, init_cfg=None)
    assert not any(p.requires_grad for p in net.first_conv.parameters())
    assert not any(p.requires_grad for p in net.blocks[1].parameters())
    assert all(p.requires_grad for p in net.blocks[2].parameters())
    with pytest.raises(ValueError, match='allowed 0..7'):
        AttentiveNet('alphanet-a0', out_indices=(8, ))


# ------------------------------------------------------------------ FLOPs
class _Classifier(nn.Module):

    def __init__(self, arch):
        super().__init__()
        a = parse_attentive_arch(arch)
        self.backbone = AttentiveNet(a, init_cfg=None)
        self.head = CreamClsHead(1000, a.width[-2] * 6, a.width[-1],
                                 conv_bias=False)

    def forward(self, x):
        return self.head(self.backbone(x))


@pytest.mark.parametrize('seed,size', [(0, 32), (1, 48), (2, 64), (3, 56)])
def test_flops_counter_equals_flop_analyzer(seed, size):
    arch = _random_arch(AttentiveSpace(), seed)
    fa = FlopAnalyzer(_Classifier(arch).eval(),
                      (torch.randn(1, 3, size, size), ))
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    ops = fa.by_operator()
    a = parse_attentive_arch(str(arch).replace(f'r{arch.resolution}',
                                               f'r{size}'))
    assert attentive_cost(a).macs == ops['conv'] + ops['linear']
    params = sum(p.numel() for p in _Classifier(arch).parameters())
    assert attentive_cost(a).params == params


@pytest.mark.parametrize('name', list(ALPHANET_MFLOPS))
def test_released_flops_match_the_alphanet_table(name):
    mflops = attentive_cost(name).macs / 1e6
    assert abs(mflops / ALPHANET_MFLOPS[name] - 1) < 0.01, mflops


def test_a0_is_the_min_subnet_of_the_paper_space():
    assert AttentiveSpace().extreme(False) == ALPHANET_ARCHS['alphanet-a0']


def test_drop_path_only_last_two_stages_and_training(supernet):
    net = AttentiveSupernet(space=TINY, init_cfg=None)
    net.set_drop_path(0.2)
    rates = [[b.drop_path_rate for b in st] for st in net.blocks[:-1]]
    assert all(r == 0 for st in rates[:5] for r in st)
    n = sum(len(st) for st in rates)
    assert rates[-1][-1] == pytest.approx(0.2 * (n - 1) / n)
    arch = net.space.extreme(True)
    x = torch.randn(2, 3, 32, 32)
    net.eval()
    with torch.no_grad():
        a, b = net(x, arch)[-1], net(x, arch)[-1]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    net.set_drop_path(0.)
    with torch.no_grad():
        torch.testing.assert_close(net(x, arch)[-1], a, rtol=0, atol=0)
    net.set_drop_path(0.9)
    net.train()
    torch.manual_seed(0)
    with torch.no_grad():
        c = net(x, arch)[-1]
    net.set_drop_path(0.)
    torch.manual_seed(0)
    with torch.no_grad():
        d = net(x, arch)[-1]
    assert not torch.allclose(c, d)


def test_gradients_reach_exactly_the_active_slices():
    net = AttentiveSupernet(space=TINY, init_cfg=None).train()
    arch = net.space.extreme(False)  # min widths / kernel 3 / shallowest
    net(torch.randn(2, 3, 32, 32), arch)[-1].square().mean().backward()
    blk = net.blocks[1][0]  # mb2 first block: in 16 -> out 24, expand 4
    mid = 16 * 4
    g = blk.conv_pw.weight.grad
    assert g[:mid, :16].abs().sum() > 0
    assert g[mid:].abs().sum() == 0 and g[:, 16:].abs().sum() == 0
    gdw = blk.conv_dw.weight.grad  # 5x5 kernel, 3x3 centre active
    assert gdw[:mid, :, 1:4, 1:4].abs().sum() > 0
    assert gdw[:, :, 0].abs().sum() == 0 and gdw[:, :, :, 4].abs().sum() == 0
    assert net.blocks[1][3].conv_pw.weight.grad is None  # depth 3: unused
    # BN running statistics moved only on the active channels
    bn = blk.bn1
    assert (bn.running_mean[mid:] == 0).all() and \
        (bn.running_mean[:mid] != 0).all()
