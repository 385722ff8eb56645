"""Blocks and the CreamNet backbone: exact structure of the release."""
import pytest
import torch
import torch.nn as nn

from cream_mm.arch import RELEASED
from cream_mm.models import CreamClsHead, CreamNet, build_op, make_divisible
from cream_mm.models.blocks import (InvertedResidual, ResidualBottleneck,
                                    SqueezeExcite)

# spec §2: exact parameter counts with the 1000-class release head
PARAMS = {'cream-14m': 2_673_096, 'cream-43m': 4_398_600,
          'cream-114m': 4_410_120, 'cream-287m': 6_044_368,
          'cream-481m': 7_713_360, 'cream-604m': 9_695_624}


def _count(*modules):
    return sum(p.numel() for m in modules for p in m.parameters())


@pytest.mark.parametrize('name', sorted(PARAMS))
def test_released_params_exact(name):
    assert _count(CreamNet(name), CreamClsHead(1000)) == PARAMS[name]


def test_make_divisible_rounding():
    assert make_divisible(16 * 0.25) == 8
    assert make_divisible(24 * 4) == 96
    assert make_divisible(10) == 16  # 8 would be below 90% of 10


def test_mbconv_structure_and_gate():
    blk = InvertedResidual(24, 24, 5, 1, 6)
    names = [n for n, _ in blk.named_children()]
    assert names[:3] == ['drop_path', 'conv_pw', 'bn1'] or 'conv_pw' in names
    assert blk.conv_pw.out_channels == 144 and blk.conv_dw.kernel_size == (5, 5)
    assert blk.conv_dw.groups == 144 and blk.conv_dw.padding == (2, 2)
    assert blk.se.conv_reduce.out_channels == make_divisible(144 * 0.25)
    assert blk.conv_pw.bias is None and blk.se.conv_reduce.bias is not None
    assert blk.has_residual
    # hard-sigmoid gate relu6(x+3)/6
    se = SqueezeExcite(8)
    with torch.no_grad():
        for p in se.parameters():
            p.zero_()
        se.conv_expand.bias.fill_(1.5)
    x = torch.ones(1, 8, 2, 2)
    assert torch.allclose(se(x), x * 0.75)


def test_state_dict_keys_follow_release_layout():
    keys = set(CreamNet('cream-14m').state_dict())
    for k in ['conv_stem.weight', 'bn1.running_mean',
              'blocks.0.0.conv_dw.weight', 'blocks.0.0.se.conv_reduce.bias',
              'blocks.0.0.conv_pw.weight', 'blocks.0.0.bn2.weight',
              'blocks.1.0.conv_pw.weight', 'blocks.1.0.conv_pwl.weight',
              'blocks.1.0.bn3.weight', 'blocks.2.1.se.conv_expand.weight',
              'blocks.6.0.conv.weight', 'blocks.6.0.bn1.weight']:
        assert k in keys, k
    head = set(CreamClsHead(10).state_dict())
    assert head == {'conv_head.weight', 'conv_head.bias',
                    'classifier.weight', 'classifier.bias'}


def test_skip_keeps_layer_indices():
    net = CreamNet('k3e4|k5e6,skip,k3e6|k5e6|k3e6|k5e6')
    assert isinstance(net.blocks[2][1], nn.Identity)
    assert 'blocks.2.2.conv_pw.weight' in net.state_dict()


@pytest.mark.parametrize('op,cls', [('res', ResidualBottleneck),
                                    ('conv3', nn.Module), ('skip', nn.Identity),
                                    ('k7e4', InvertedResidual)])
def test_build_op_all_ops_forward(op, cls):
    stride, cin = (1, 24) if op == 'skip' else (2, 16)
    m = build_op(op, cin, 24, stride)
    assert isinstance(m, cls)
    y = m(torch.randn(2, cin, 16, 16))
    assert y.shape == (2, 24, 16 // stride, 16 // stride)


def test_build_op_errors():
    with pytest.raises(ValueError, match='allowed'):
        build_op('k9e9', 16, 16)
    with pytest.raises(ValueError, match='stride 1'):
        build_op('skip', 16, 24, 2)


def test_out_indices_strides_and_channels():
    net = CreamNet('cream-s', out_indices=(2, 4, 6)).eval()
    outs = net(torch.randn(1, 3, 224, 224))
    assert [o.shape[1] for o in outs] == [40, 96, 320]
    assert [224 // o.shape[-1] for o in outs] == [8, 16, 32]
    with pytest.raises(ValueError, match='out_indices'):
        CreamNet('cream-s', out_indices=(7, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        CreamNet('cream-s', frozen_stages=9)


@pytest.mark.parametrize('kw, words', [
    (dict(drop_path_rate=1.0),
     r'drop_path_rate: 1.0; allowed a number in \[0, 1\)'),
    (dict(drop_path_rate=-0.1), r'drop_path_rate: -0.1'),
    (dict(drop_path_rate='0.1'), r'drop_path_rate'),
    (dict(out_indices=6), r'out_indices: 6 is not a sequence.*0\.\.'),
    (dict(out_indices=(4, 2)), r'not increasing.*\(2, 4\)'),
    (dict(out_indices=(2, 2, 4)), r'duplicates.*\(2, 4\)'),
    (dict(out_indices=()), r'out_indices: empty'),
])
def test_backbone_arguments_are_checked_with_allowed_values(kw, words):
    from cream_mm.models import AttentiveNet, AttentiveSupernet
    from cream_mm.models.supernet import CreamSupernet
    with pytest.raises(ValueError, match=words):
        CreamNet('cream-14m', **kw)
    with pytest.raises(ValueError, match=words):
        AttentiveNet('alphanet-a0', **kw)
    if 'drop_path_rate' not in kw:
        with pytest.raises(ValueError, match='out_indices'):
            CreamSupernet(**kw)
        with pytest.raises(ValueError, match='out_indices'):
            AttentiveSupernet(**kw, init_cfg=None)
    else:
        net = AttentiveSupernet(init_cfg=None)
        with pytest.raises(ValueError, match='drop_path_rate'):
            net.set_drop_path(kw['drop_path_rate'])


def test_repeat_counts_no_stage_can_hold_are_refused():
    from cream_mm.arch import MAX_STAGE_LAYERS, ArchError, parse_arch
    from cream_mm.models.supernet import SearchSpace
    with pytest.raises(ArchError, match=f'1..{MAX_STAGE_LAYERS}'):
        parse_arch('k3e4*1000000000|k3e4|k3e4|k3e4|k3e4')  # instant
    with pytest.raises(ArchError, match='makes 33 layers'):
        parse_arch('k3e4*30,k5e6*3|k3e4|k3e4|k3e4|k3e4')
    assert len(parse_arch(f'k3e4*{MAX_STAGE_LAYERS}|k3e4|k3e4|k3e4|k3e4')
               .stages[0]) == MAX_STAGE_LAYERS
    with pytest.raises(ArchError, match='max_depths'):
        SearchSpace(max_depths=10**6)


def test_frozen_stages_and_norm_eval():
    net = CreamNet('cream-14m', frozen_stages=2, norm_eval=True)
    assert net.train() is net and net.eval() is net
    net.train()
    assert not net.conv_stem.weight.requires_grad
    assert not any(p.requires_grad for p in net.blocks[1].parameters())
    assert all(p.requires_grad for p in net.blocks[2].parameters())
    assert not net.blocks[3][0].bn1.training  # norm_eval
    assert not net.blocks[1][0].training  # frozen stage in eval


def test_drop_path_only_in_training():
    net = CreamNet('cream-14m', drop_path_rate=0.5)
    rates = [m.drop_prob for m in net.modules()
             if type(m).__name__ == 'DropPath']
    assert rates and max(rates) < 0.5 and rates == sorted(rates)
    net.eval()
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(net(x)[0], net(x)[0])


def test_registered_in_both_scopes():
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as CLS
    for reg in (DET, CLS):
        m = reg.build(dict(type='CreamNet', arch='cream-14m'))
        assert isinstance(m, CreamNet)
    assert CLS.get('CreamClsHead') is CreamClsHead


def test_classifier_logits_shape():
    from mmpretrain.registry import MODELS
    clf = MODELS.build(dict(
        type='ImageClassifier', backbone=dict(type='CreamNet',
                                              arch='cream-14m'),
        head=dict(type='CreamClsHead', num_classes=7,
                  loss=dict(type='CrossEntropyLoss'))))
    clf.init_weights()
    assert clf(torch.randn(2, 3, 64, 64)).shape == (2, 7)
    assert set(RELEASED) == set(PARAMS)
