"""Inference forms (BN folded; folded + frozen) equal eager outputs."""
import pytest
import torch
import torch.nn as nn

from cream_mm.evaluation.latency import build_cream_classifier, measure, table
from cream_mm.models import CreamNet
from cream_mm.models.fuse import fuse_conv_bn, optimize_for_cpu


def _randomise_bn(model):
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - .5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + .5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + .5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - .5)
    return model


@pytest.mark.parametrize('arch,size', [('cream-14m', 64), ('cream-287m', 224),
                                       ('k3e4|res,conv3|conv1|k3e6|conv5', 96)])
def test_folded_and_frozen_equal_eager(arch, size):
    torch.manual_seed(0)
    model = _randomise_bn(build_cream_classifier(arch)).eval()
    x = torch.randn(2, 3, size, size)
    folded = fuse_conv_bn(model)
    frozen = optimize_for_cpu(model, x)
    with torch.no_grad():
        ref = model(x)
        assert (folded(x) - ref).abs().max() < 1e-5
        assert (frozen(x) - ref).abs().max() < 1e-5
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_fuse_backbone_inside_detector_outputs():
    net = _randomise_bn(CreamNet('cream-14m', out_indices=(2, 4, 6))).eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        for a, b in zip(net(x), fuse_conv_bn(net)(x)):
            assert (a - b).abs().max() < 1e-5


def test_latency_measure_and_table():
    models = {'a': nn.Conv2d(3, 4, 3), 'b': nn.Identity()}
    t = measure(models, {'a': 16, 'b': 16}, runs=3, warmup=1)
    assert [x.name for x in t] == ['a', 'b'] and len(t[0].runs_ms) == 3
    text = table(t, 'a')
    assert '| a | 16 |' in text and '1.00 |' in text


def test_latency_measure_blocks_and_warmup():
    """Rounds of ``warmup`` untimed + ``block`` timed runs per model: every
    model gets exactly ``runs`` timed runs, each after runs of itself."""
    calls = []

    class Probe(nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def forward(self, x):
            calls.append(self.name)
            return x

    models = {'a': Probe('a'), 'b': Probe('b')}
    t = measure(models, {'a': 8, 'b': 8}, runs=5, warmup=1, block=2)
    assert [len(x.runs_ms) for x in t] == [5, 5]
    # 3 rounds: (1 warm-up + 2 timed) a, b; again; then 1 + 1 each
    assert ''.join(calls) == 'aaabbbaaabbbaabb'
    with pytest.raises(ValueError, match='block'):
        measure(models, {'a': 8, 'b': 8}, runs=5, block=0)
