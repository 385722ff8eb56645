"""A Cream backbone in a stock mmdet config: the neck/head geometry check
(docs/detection.md, "Cream backbones in any mmdet config")."""
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import cream_mm  # noqa: F401
from cream_mm.engine import check_detector, prepare_runner_cfg

BACKBONE = dict(_delete_=True, type='CreamNet', arch='cream-14m',
                out_indices=(2, 4, 6), init_cfg=None)


def _detector(base, **model):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = Config.fromstring(
        f"_base_ = ['{base}']\nmodel = {dict(backbone=BACKBONE, **model)!r}",
        file_format='.py')
    return MODELS.build(cfg.model)


def test_stock_retinanet_start_level_1_is_reported():
    model = _detector('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                      neck=dict(in_channels=[40, 96, 320]))
    problems = check_detector(model)
    assert len(problems) == 1, problems
    assert 'bbox_head prior strides are [8, 16, 32, 64, 128] but the neck ' \
        'outputs strides [16, 32, 64, 128, 256]' in problems[0]
    assert 'use start_level=0' in problems[0]
    fixed = _detector('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                      neck=dict(in_channels=[40, 96, 320], start_level=0))
    assert check_detector(fixed) == []


def test_wrong_in_channels_and_two_stage_strides_are_reported():
    model = _detector('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py')
    assert check_detector(model) == [
        'neck.in_channels=[256, 512, 1024, 2048] but the backbone outputs '
        '[40, 96, 320] channels (strides [8, 16, 32]); set '
        'neck.in_channels=[40, 96, 320]']
    frcnn = _detector('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                      neck=dict(in_channels=[40, 96, 320]))
    problems = check_detector(frcnn)
    assert any('rpn_head prior strides are [4, 8, 16, 32, 64]' in p and
               'set them to [8, 16, 32, 64, 128]' in p for p in problems)
    assert any('bbox_roi_extractor featmap_strides are [4, 8, 16, 32]' in p
               for p in problems)


@pytest.mark.parametrize('fragment', [
    'retinanet_cream_fpn', 'faster-rcnn_cream_fpn', 'fcos_cream_fpn',
    'atss_cream_fpn', 'mask-rcnn_cream_fpn'])
def test_the_project_fragments_are_consistent(fragment):
    from conftest import ROOT
    model = _detector(f'{ROOT}/configs/_base_/models/{fragment}.py')
    assert check_detector(model) == []


def test_tools_add_the_hook_for_models_with_a_neck():
    cfg = prepare_runner_cfg(Config(dict(model=dict(neck=dict()))))
    assert dict(type='NeckCheckHook') in cfg.custom_hooks
    cfg = prepare_runner_cfg(Config(dict(model=dict(type='X'))))
    assert dict(type='NeckCheckHook') not in cfg.custom_hooks
