"""AlphaNet / AttentiveNAS configs: classifiers at their resolution, the
supernet bases, RetinaNet (COCO and the embedded CPU run), get_flops."""
import glob
import os

import pytest
import torch
from mmengine.config import Config

import cream_mm  # noqa: F401
from cream_mm.models import parse_attentive_arch
from tools.get_flops import main as get_flops
from tools.train import main as train_main

CLS = sorted(glob.glob('configs/alphanet/*.py'))
RES = {'a0': 192, 'a1': 224, 'a2': 224, 'a3': 224, 'a4': 256,
       'a5-small': 256, 'a5-base': 288, 'a6': 288}


@pytest.fixture(autouse=True)
def _keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_every_released_arch_has_a_config():
    assert [os.path.basename(p).split('_')[0] for p in CLS] == sorted(
        f'alphanet-{k}' for k in RES)


@pytest.mark.parametrize('path', CLS)
def test_alphanet_classifier_configs(path):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    name = os.path.basename(path).split('_')[0]
    bb, head = cfg.model.backbone, cfg.model.head
    assert bb.arch == name
    arch = parse_attentive_arch(name)
    res = RES[name[len('alphanet-'):]]
    assert arch.resolution == res
    assert cfg.train_dataloader.dataset.pipeline[1].scale == res
    assert cfg.val_dataloader.dataset.pipeline[2].crop_size == res
    assert head.in_channels == 6 * arch.width[7]
    assert head.head_channels == arch.width[8] and head.conv_bias is False
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.nesterov, opt.weight_decay) == (
        'SGD', 0.8, True, 1e-5)
    assert cfg.train_dataloader.batch_size * 64 == 2048
    assert cfg.train_cfg.max_epochs == 360
    model = MODELS.build(cfg.model).eval()
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


@pytest.mark.parametrize('base,size', [
    ('configs/_base_/models/attentive_supernet.py', 64),
    ('configs/_base_/models/attentive_supernet_tiny.py', 32)])
def test_supernet_bases_build_with_sampler(base, size):
    from mmpretrain.registry import MODELS

    from cream_mm.search import build_sampler
    cfg = Config.fromfile(base)
    net = MODELS.build(cfg.supernet).eval()
    head = MODELS.build(cfg.head).eval()
    sampler = build_sampler(net, head.num_classes, seed=0)
    arch = sampler.sample()
    head.set_path(arch)
    with torch.no_grad():
        logits = head(net(torch.randn(2, 3, size, size), arch))
    assert logits.shape == (2, head.num_classes)
    big = sampler.extreme(True)
    assert head.conv_head.out_channels == big.width[-1]
    assert head.conv_head.in_channels == 6 * big.width[-2]


def test_get_flops_counts_alphanet_configs(capsys):
    get_flops(['configs/alphanet/alphanet-a0_64xb32_in1k.py'])
    out = capsys.readouterr().out
    assert '203.39 M' in out


def test_embedded_retinanet_alphanet_trains(tmp_path):
    runner = train_main([
        'configs/embedded/retinanet_alphanet-a0_fpn_trees.py',
        '--work-dir', str(tmp_path), '--cfg-options',
        'train_cfg.max_iters=3', 'train_cfg.val_interval=1000',
        'train_cfg.val_begin=1000', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=3',
        'train_dataloader.batch_size=1'])
    assert type(runner.model.backbone).__name__ == 'AttentiveNet'
    losses = list(runner.message_hub.log_scalars['train/loss'].data[0])
    assert len(losses) == 3 and torch.isfinite(torch.tensor(losses)).all()
    assert os.path.isfile(tmp_path / 'iter_3.pth')
