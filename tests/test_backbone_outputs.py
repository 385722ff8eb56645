"""Detector backbones run only up to the deepest ``out_indices``: under DDP
without ``find_unused_parameters`` every trainable parameter must receive a
gradient at every iteration, or the second iteration raises. The stages
past the deepest output are still built (frozen), so a classifier
checkpoint loads strictly into the detector's backbone."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import cream_mm  # noqa: F401
from cream_mm.models import AttentiveNet, CreamNet
from cream_mm.models.checkpoint import load_strict

torch.set_num_threads(1)
DETECTORS = ['configs/embedded/retinanet_alphanet-a0_fpn_trees.py',
             'configs/embedded/retinanet_cream-s_fpn_trees.py']


def _sample(size=64):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    s = DetDataSample()
    s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                        pad_shape=(size, size), scale_factor=(1.0, 1.0),
                        batch_input_shape=(size, size)))
    s.gt_instances = InstanceData(
        bboxes=torch.tensor([[8., 8., 40., 48.]]),
        labels=torch.tensor([0]))
    return s


@pytest.mark.parametrize('path', DETECTORS)
def test_detection_loss_reaches_every_trainable_parameter(path):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(path)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    torch.manual_seed(0)
    losses = model.loss(torch.randn(2, 3, 64, 64), [_sample(), _sample()])
    sum(v.sum() if isinstance(v, torch.Tensor) else sum(v)
        for k, v in losses.items() if 'loss' in k).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable
    no_grad = [n for n, p in trainable.items() if p.grad is None]
    assert no_grad == []
    backbone = model.backbone
    last = max(backbone.out_indices)
    unused = list(backbone.blocks[last + 1:].parameters())
    if isinstance(backbone, AttentiveNet):
        assert last < len(backbone.blocks) - 1 and unused
    assert all(not p.requires_grad for p in unused)


def test_unused_stages_built_frozen_and_classifier_checkpoints_load():
    """AlphaNet-A0 at the detector's (2, 4, 6): the classifier's
    ``blocks.7`` is built but frozen and never runs; the classifier's
    state dict loads strictly; the outputs equal the full network's."""
    cls = AttentiveNet('alphanet-a0', out_indices=(2, 4, 6, 7)).eval()
    det = AttentiveNet('alphanet-a0', out_indices=(2, 4, 6))
    load_strict(det, cls.state_dict(), 'classifier checkpoint')
    det.train()
    assert not det.blocks[7].training
    assert all(not p.requires_grad for p in det.blocks[7].parameters())
    assert all(p.requires_grad for p in det.blocks[6].parameters())
    det.eval()
    calls = []
    det.blocks[7].register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        full, out = cls(x), det(x)
    assert calls == [] and len(out) == 3
    assert all(torch.equal(a, b) for a, b in zip(full[:3], out))


def test_cream_net_detector_indices_use_every_stage():
    """CreamNet's detector outputs (2, 4, 6) end at the last stage: nothing
    is frozen; a shallower choice freezes only what follows it."""
    net = CreamNet('cream-14m', out_indices=(2, 4, 6))
    assert all(p.requires_grad for p in net.parameters())
    short = CreamNet('cream-14m', out_indices=(1, 3))
    assert all(not p.requires_grad for p in short.blocks[4:].parameters())
    assert all(p.requires_grad for p in short.blocks[:4].parameters())


def test_attentive_supernet_runs_only_to_its_deepest_output():
    from cream_mm.models import AttentiveSupernet
    cfg = Config.fromfile('configs/_base_/models/attentive_supernet_tiny.py')
    sup = dict(cfg.supernet.to_dict(), out_indices=(2, 4))
    sup.pop('type')
    net = AttentiveSupernet(**sup)
    arch = net.space.extreme(True)
    calls = []
    net.blocks[-1].register_forward_hook(lambda *a: calls.append(1))
    out = net(torch.randn(1, 3, 32, 32), arch)
    assert len(out) == 2 and calls == []
    assert all(not p.requires_grad for p in net.blocks[5:].parameters())
