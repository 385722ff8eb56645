"""Every shipped paper-scale config parses and builds; tools read them."""
import glob

import pytest
import torch
from mmengine.config import Config

import cream_mm  # noqa: F401
from tools.get_flops import main as get_flops

CLS = sorted(glob.glob('configs/cream/*.py'))
DET = sorted(glob.glob('configs/retinanet/*.py'))


@pytest.mark.parametrize('path', CLS)
def test_classifier_configs_build(path):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    model = MODELS.build(cfg.model)
    arch = cfg.model.backbone.arch
    assert arch in path
    assert cfg.optim_wrapper.optimizer.type == 'RMSpropTF'
    assert cfg.train_cfg.max_epochs == 500
    size = cfg.val_dataloader.dataset.pipeline[2]['crop_size']
    assert size == {'cream-14m': 64, 'cream-43m': 96,
                    'cream-114m': 160}.get(arch, 224)
    model.eval()
    assert model(torch.zeros(1, 3, size, size)).shape == (1, 1000)


@pytest.mark.parametrize('path', DET)
def test_retinanet_configs_follow_table7_schedule(path):
    from mmdet.registry import MODELS
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    assert cfg.optim_wrapper.optimizer.lr == 0.04
    assert cfg.train_dataloader.batch_size * 8 == 32
    assert cfg.param_scheduler[1].milestones == [8, 11]
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.model.backbone.init_cfg.prefix == 'backbone.'
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model).eval()
    feats = model(torch.zeros(1, 3, 128, 128), mode='tensor')
    assert len(feats[0]) == 5  # P3-P7


def test_get_flops_prints_both_conventions(capsys):
    get_flops(['configs/cream/cream-14m_16xb128_in1k.py'])
    out = capsys.readouterr().out
    assert '13.85 M' in out and '13.19 M' in out and '2,673,096' in out
    get_flops(['--arch', 'cream-43m'])
    assert '42.41 M' in capsys.readouterr().out


def test_rmsprop_tf_matches_tf_update():
    from cream_mm.optim import RMSpropTF
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = RMSpropTF([w], lr=0.1, alpha=0.9, eps=1e-3, momentum=0.9)
    g = torch.tensor([0.5, 0.25])
    v, b, ref = torch.ones(2), torch.zeros(2), w.detach().clone()
    for _ in range(3):
        w.grad = g.clone()
        opt.step()
        v = 0.9 * v + 0.1 * g * g
        b = 0.9 * b + 0.1 * g / (v + 1e-3).sqrt()
        ref = ref - b
    assert torch.allclose(w.detach(), ref)
    with pytest.raises(ValueError, match='lr'):
        RMSpropTF([w], lr=-1)


@pytest.mark.parametrize('cfg', [
    'configs/detection/mask-rcnn_cream-s_fpn_1x_coco.py',
    'configs/detection/fcos_cream-s_fpn_1x_coco.py'])
def test_get_flops_whole_detector(cfg, capsys):
    get_flops([cfg, '--shape', '128', '128'])
    out = capsys.readouterr().out
    assert 'whole-model MACs' in out and '(backbone)' in out
