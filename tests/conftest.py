"""Shared toys for the engine tests: tiny registered components and configs.

A linear regressor on fixed data (no BatchNorm, no dropout, fixed init), so
runs are exactly reproducible and 2-process DDP equals single-process
training on the union of both ranks' batches.  Components are registered in
mmengine's root registries, so configs of any ``default_scope`` find them;
configs import them with ``custom_imports=['conftest']`` (subprocesses get
``tests/`` on ``PYTHONPATH``).  ``.gitignore`` ignores ``data/`` dirs, so the
configs are written to a temp dir instead of ``tests/data/``.
"""
import os
import socket
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.dist import get_rank
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
PYTHON = sys.executable
if ROOT not in sys.path:  # `from tools.train import main` under plain pytest
    sys.path.insert(0, ROOT)


def toy_data(n: int = 32):
    """Inputs (n, 4), targets (n,); even/odd rows (the 2 ranks) differ."""
    x = torch.linspace(-2, 2, n * 4).reshape(n, 4).sin() * 3
    x[::2] += 1.5
    return x, x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + x[:, 0]**2


def toy_linear() -> nn.Linear:
    fc = nn.Linear(4, 1)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[0.1, 0.2, -0.1, 0.05]]))
        fc.bias.fill_(0.3)
    return fc


@DATASETS.register_module(force=True)
class ToyRegression(torch.utils.data.Dataset):
    """``toy_data``; the metainfo carries numpy values on purpose."""

    metainfo = dict(classes=('y', ), scale=np.float32(0.5),
                    palette=np.array([[0, 128, 255]], dtype=np.uint8))

    def __init__(self, n: int = 32):
        self.x, self.y = toy_data(n)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], target=self.y[i])


@MODELS.register_module(force=True)
class ToyRegressor(BaseModel):
    """``toy_linear`` with an MSE loss."""

    def __init__(self, data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor, init_cfg)
        self.fc = toy_linear()

    def forward(self, inputs, target=None, mode='tensor'):
        out = self.fc(inputs).squeeze(-1)
        if mode == 'loss':
            return dict(loss=((out - target)**2).mean())
        if mode == 'predict':
            return [dict(pred=p, target=t) for p, t in zip(out, target)]
        return out


@METRICS.register_module(force=True)
class ToyMSE(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.extend(
            float((s['pred'] - s['target'])**2) for s in data_samples)

    def compute_metrics(self, results):
        return dict(mse=float(np.mean(results)), count=len(results))


@HOOKS.register_module(force=True)
class DumpWeightsHook(Hook):
    """After the run, save this rank's weights (``weights_rank{r}.pt``)."""

    priority = 'LOWEST'

    def after_run(self, runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        torch.save(model.state_dict(),
                   f'{runner.work_dir}/weights_rank{get_rank()}.pt')


@DATASETS.register_module(force=True)
class ToyImages(torch.utils.data.Dataset):
    """8 random 3x32x32 uint8 images in mmpretrain's packed format."""

    def __init__(self, n: int = 8, num_classes: int = 10):
        from mmpretrain.structures import DataSample
        g = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (n, 3, 32, 32), generator=g,
                                    dtype=torch.uint8)
        self.labels = [i % num_classes for i in range(n)]
        self.metainfo = dict(classes=tuple(map(str, range(num_classes))))
        self.sample = DataSample

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return dict(inputs=self.images[i],
                    data_samples=self.sample().set_gt_label(self.labels[i]))


_RUNTIME = """
custom_imports = dict(imports=['conftest'], allow_failed_imports=False)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl'),
               mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
randomness = dict(seed=0)
log_level = 'WARNING'
train_cfg = dict(by_epoch=True, max_epochs=1)
test_cfg = dict()
"""

#: toy regression; ``nccl`` above is deliberate: on CPU we switch to gloo.
TOY_REGRESSION = """
default_scope = 'mmpretrain'
model = dict(type='ToyRegressor')
train_dataloader = dict(
    batch_size=4, num_workers=0, dataset=dict(type='ToyRegression'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))
test_dataloader = train_dataloader
test_evaluator = dict(type='ToyMSE')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01))
custom_hooks = [dict(type='DumpWeightsHook')]
""" + _RUNTIME

#: a tiny CreamNet (cream-14m) classifier on 8 random images.
CREAM_TINY_CLS = """
default_scope = 'mmpretrain'
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(num_classes=10, mean=[127.5] * 3, std=[127.5] * 3),
    backbone=dict(type='CreamNet', arch='cream-14m'),
    head=dict(type='CreamClsHead', num_classes=10, in_channels=320,
              loss=dict(type='CrossEntropyLoss')))
train_dataloader = dict(
    batch_size=4, num_workers=0, dataset=dict(type='ToyImages'),
    sampler=dict(type='DefaultSampler', shuffle=True))
test_dataloader = dict(
    batch_size=4, num_workers=0, dataset=dict(type='ToyImages'),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(type='Accuracy', topk=(1, ))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
""" + _RUNTIME


@pytest.fixture
def toy_configs(tmp_path):
    """Write the toy configs; return ``name -> path``."""
    paths = {}
    for name, text in [('toy_regression', TOY_REGRESSION),
                       ('cream_tiny_cls', CREAM_TINY_CLS)]:
        paths[name] = str(tmp_path / f'{name}.py')
        with open(paths[name], 'w') as f:
            f.write(text)
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


_SESSION_SCOPES = None


@pytest.fixture(autouse=True)
def _restore_default_scope():
    """After each test drop every default scope created since the session
    began (by Runners, module fixtures, ``init_default_scope``): an 'mmdet'
    scope left current would send later mmpretrain builds to mmdet."""
    from mmengine.registry import DefaultScope
    global _SESSION_SCOPES
    if _SESSION_SCOPES is None:
        _SESSION_SCOPES = set(DefaultScope._instance_dict)
    yield
    for name in list(DefaultScope._instance_dict):
        if name not in _SESSION_SCOPES:
            DefaultScope._instance_dict.pop(name)
