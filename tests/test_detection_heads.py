"""Cream backbones under the other mmdet heads: ATSS, FCOS, Faster and Mask
R-CNN.

* every paper-scale COCO config in ``configs/detection/`` follows the Table 7
  schedule, builds, and runs a tensor-mode forward on a small input;
* the embedded ATSS and Mask R-CNN configs train 4 iterations on the
  composite set (finite losses; Mask R-CNN's include ``loss_mask``);
* ``tools/test.py`` evaluates a briefly trained Mask R-CNN checkpoint and
  reports COCO's full box and mask metric sets.
"""
import glob
import json
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import cream_mm  # noqa: F401
# not imported as test_main: pytest would collect it as a test
from tools.test import main as evaluate_main
from tools.train import main as train_main

PAPER = sorted(glob.glob('configs/detection/*.py'))
HEADS = {'atss': 'ATSS', 'fcos': 'FCOS', 'faster-rcnn': 'FasterRCNN',
         'mask-rcnn': 'MaskRCNN'}
METRIC_KEYS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')


@pytest.fixture(autouse=True)
def _keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_every_head_has_a_paper_scale_config():
    names = {os.path.basename(p).split('_cream')[0] for p in PAPER}
    assert names == set(HEADS), PAPER


def _samples(size):
    from mmdet.structures import DetDataSample
    s = DetDataSample()
    s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                        pad_shape=(size, size), scale_factor=(1.0, 1.0),
                        batch_input_shape=(size, size)))
    return [s]


@pytest.mark.parametrize('path', PAPER)
def test_paper_config_follows_table7_and_forwards(path):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    head = os.path.basename(path).split('_cream')[0]
    assert cfg.model.type == HEADS[head]
    # the schedule of configs/retinanet/retinanet_cream-s_fpn_1x_coco.py
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == (
        'SGD', 0.04, 0.9, 1e-4)
    assert cfg.train_dataloader.batch_size * 8 == 32
    assert cfg.param_scheduler[1].milestones == [8, 11]
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.auto_scale_lr.base_batch_size == 32
    # COCO at mmdet's layout; masks (and segm AP) for Mask R-CNN
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    load = cfg.train_dataloader.dataset.pipeline[1]
    assert load.type == 'LoadAnnotations'
    assert load.get('with_mask', False) == (head == 'mask-rcnn')
    metric = cfg.val_evaluator.metric
    assert metric == (['bbox', 'segm'] if head == 'mask-rcnn' else 'bbox')
    # Cream-S, strides 8/16/32 into the FPN, ImageNet weights by prefix
    bb = cfg.model.backbone
    assert (bb.type, bb.arch, tuple(bb.out_indices)) == (
        'CreamNet', 'cream-287m', (2, 4, 6))
    assert cfg.model.neck.in_channels == [40, 96, 320]
    assert bb.init_cfg == dict(
        type='Pretrained', prefix='backbone.',
        checkpoint='checkpoints/cream-287m_backbone.pth')
    if 'rcnn' in head:
        roi = cfg.model.roi_head
        assert cfg.model.rpn_head.anchor_generator.strides == [8, 16, 32, 64,
                                                               128]
        assert roi.bbox_roi_extractor.featmap_strides == [8, 16, 32, 64]
        if head == 'mask-rcnn':
            assert roi.mask_roi_extractor.featmap_strides == [8, 16, 32, 64]
    cfg.model.backbone.init_cfg = None  # no checkpoint here
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model).eval()
    model.init_weights()
    size = 128
    with torch.no_grad():
        out = model(torch.zeros(1, 3, size, size), _samples(size),
                    mode='tensor')
    if 'rcnn' in head:
        roi_outs = out[-1]  # (cls_score, bbox_pred[, mask_preds])
        assert roi_outs[0].shape[-1] == 81  # 80 classes + background
        if head == 'mask-rcnn':
            assert roi_outs[2].shape[1:] == (80, 28, 28)
    else:
        cls_scores = out[0]
        assert len(cls_scores) == 5  # P3-P7
        assert [c.shape[-1] for c in cls_scores] == [16, 8, 4, 2, 1]
        assert all(torch.isfinite(c).all() for c in cls_scores)


def _losses(runner, key='loss'):
    return list(runner.message_hub.log_scalars[f'train/{key}'].data[0])


def _train(cfg, work_dir, iters=4):
    # val_begin: mmengine's IterBasedTrainLoop validates after the last
    # iteration whatever val_interval says (25 s for Mask R-CNN on 2 cores)
    return train_main([
        cfg, '--work-dir', str(work_dir), '--cfg-options',
        f'train_cfg.max_iters={iters}', 'train_cfg.val_interval=1000',
        'train_cfg.val_begin=1000',
        'default_hooks.logger.interval=1',
        f'default_hooks.checkpoint.interval={iters}',
        'train_dataloader.batch_size=1'])


def test_atss_trains_a_few_iterations(tmp_path):
    runner = _train('configs/embedded/atss_cream-s_fpn_composite.py',
                    tmp_path)
    assert type(runner.model).__name__ == 'ATSS'
    losses = _losses(runner)
    assert len(losses) == 4 and torch.isfinite(torch.tensor(losses)).all()
    for key in ('loss_cls', 'loss_bbox', 'loss_centerness'):
        assert torch.isfinite(torch.tensor(_losses(runner, key))).all()
    assert os.path.isfile(tmp_path / 'iter_4.pth')


@pytest.fixture(scope='module')
def mask_rcnn_run(tmp_path_factory):
    """Mask R-CNN trained 4 iterations on the composite set (shared)."""
    work_dir = tmp_path_factory.mktemp('mask_rcnn')
    runner = _train('configs/embedded/mask-rcnn_cream-s_fpn_composite.py',
                    work_dir)
    return runner, work_dir


def test_mask_rcnn_trains_with_a_mask_loss(mask_rcnn_run):
    runner, work_dir = mask_rcnn_run
    assert type(runner.model).__name__ == 'MaskRCNN'
    losses = _losses(runner)
    assert len(losses) == 4 and torch.isfinite(torch.tensor(losses)).all()
    mask = _losses(runner, 'loss_mask')
    assert len(mask) == 4 and torch.isfinite(torch.tensor(mask)).all()
    assert all(m > 0 for m in mask)
    assert os.path.isfile(work_dir / 'iter_4.pth')


def test_mask_rcnn_checkpoint_evaluates_box_and_mask_ap(mask_rcnn_run,
                                                        capsys):
    _, work_dir = mask_rcnn_run
    out = work_dir / 'test'
    # score_thr 0: a 4-iteration model must still predict something to score
    metrics = evaluate_main([
        'configs/embedded/mask-rcnn_cream-s_fpn_composite.py',
        str(work_dir / 'iter_4.pth'), '--work-dir', str(out),
        '--cfg-options', 'model.test_cfg.rcnn.score_thr=0.0',
        'model.test_cfg.rpn.max_per_img=100',
        'model.test_cfg.rcnn.max_per_img=20'])
    want = {f'coco/{kind}_{k}' for kind in ('bbox', 'segm')
            for k in METRIC_KEYS}
    assert want <= set(metrics), sorted(metrics)
    for key in want:
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics[key])
    # pycocotools printed both summaries (12 lines each: AP, AP50, AP75,
    # APS/M/L, then the ARs); the numbers land in the run's json log and
    # the copy-paste lines in its text log
    printed = capsys.readouterr().out
    assert printed.count('Average Precision  (AP) @[ IoU=0.50:0.95 | '
                         'area= small') == 2
    run = sorted(d for d in os.listdir(out) if d[:2] == '20')[-1]
    with open(out / run / f'{run}.json') as f:
        logged = json.load(f)
    assert want <= set(logged)
    text = (out / run / f'{run}.log').read_text()
    assert 'bbox_mAP_copypaste' in text and 'segm_mAP_copypaste' in text
