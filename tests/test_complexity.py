"""FLOPs/params against the paper's tables and mmengine's counter."""
import pytest
import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer

from cream_mm.arch import parse_arch
from cream_mm.models import CreamClsHead, CreamNet
from cream_mm.models.complexity import arch_cost, layer_cost

# spec §2: measured with thop 0.0.31 on the authors' code / pure MACs, in M
PAPER = {'cream-14m': (13.85, 13.19), 'cream-43m': (42.41, 40.66),
         'cream-114m': (114.49, 109.62), 'cream-287m': (287.20, 276.26),
         'cream-481m': (481.60, 460.40), 'cream-604m': (604.34, 578.70)}


@pytest.mark.parametrize('name', sorted(PAPER))
def test_paper_flops_and_macs_within_half_percent(name):
    cost = arch_cost(name)  # at the model's own input size
    flops, macs = PAPER[name]
    assert abs(cost.flops / 1e6 / flops - 1) < 0.005
    assert abs(cost.macs / 1e6 / macs - 1) < 0.005
    assert cost.params == sum(p.numel() for m in (CreamNet(name),
                                                   CreamClsHead(1000))
                              for p in m.parameters())


class _Classifier(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.backbone, self.head = CreamNet(arch), CreamClsHead(1000)

    def forward(self, x):
        return self.head(self.backbone(x))


@pytest.mark.parametrize('arch,size', [
    ('cream-14m', 64), ('cream-287m', 224), ('cream-43m', 128),
    ('k7e4|k3e6,skip,res|conv1,conv5|res,k5e4|conv3', 96)])
def test_macs_agree_with_mmengine_counter(arch, size):
    fa = FlopAnalyzer(_Classifier(arch).eval(),
                      (torch.randn(1, 3, size, size), ))
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    ops = fa.by_operator()
    theirs = ops['conv'] + ops['linear']
    ours = arch_cost(arch, size).macs
    assert abs(ours / theirs - 1) < 0.005, (ours, theirs)


def test_input_size_and_head_options():
    a = parse_arch('cream-14m')
    assert arch_cost(a, 128).macs > 3 * arch_cost(a, 64).macs
    no_head = arch_cost(a, with_head=False)
    assert no_head.params == sum(p.numel()
                                 for p in CreamNet('cream-14m').parameters())


def test_layer_cost_is_cached_table():
    layer_cost.cache_clear()
    arch_cost('cream-287m')
    hits = layer_cost.cache_info()
    arch_cost('cream-287m')
    assert layer_cost.cache_info().hits > hits.hits
