"""Tiny detection searches for the detection-search tests: a 2-layer-per-
stage hypernetwork at 64 px inside an mmdet RetinaNet / FCOS / GFL /
Faster R-CNN with narrow necks and heads, synthetic images with boxes, and
a COCO annotation file of them (for a real ``CocoMetric``)."""
import json
import os

import torch
from mmdet.registry import METRICS
from mmdet.registry import MODELS as DET_MODELS
from mmdet.structures import DetDataSample
from mmengine.evaluator import BaseMetric
from mmengine.structures import InstanceData

import cream_mm  # noqa: F401  (registers DetCreamSearch)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 64
CLASSES = ('a', 'b', 'c')
SUPERNET = dict(type='CreamSupernet', out_indices=(2, 4, 6),
                space=dict(name='mbconv', max_depths=1, input_size=SIZE))
PRE = dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32)
NECK = dict(type='FPN', in_channels=[1, 1, 1], out_channels=16,
            start_level=0, add_extra_convs='on_input', num_outs=3)
ANCHORS = dict(type='AnchorGenerator', octave_base_scale=4,
               scales_per_octave=1, ratios=[1.0], strides=[8, 16, 32])
CODER = dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
             target_stds=[1.0, 1.0, 1.0, 1.0])


def retinanet(**head):
    return dict(
        type='RetinaNet', data_preprocessor=PRE, backbone=SUPERNET,
        neck=NECK,
        bbox_head=dict(
            dict(type='RetinaHead', num_classes=len(CLASSES),
                 in_channels=16, stacked_convs=1, feat_channels=16,
                 anchor_generator=ANCHORS, bbox_coder=CODER,
                 loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                               alpha=0.25, loss_weight=1.0),
                 loss_bbox=dict(type='L1Loss', loss_weight=1.0)), **head),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                          neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=-1),
            sampler=dict(type='PseudoSampler'), allowed_border=-1,
            pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.0,
                      nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=20))


def gfl():
    cfg = retinanet()
    cfg.update(type='GFL', bbox_head=dict(
        type='GFLHead', num_classes=len(CLASSES), in_channels=16,
        stacked_convs=1, feat_channels=16, anchor_generator=ANCHORS,
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0,
                      loss_weight=1.0),
        loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
        reg_max=4, norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0)))
    cfg['train_cfg'] = dict(assigner=dict(type='ATSSAssigner', topk=9),
                            allowed_border=-1, pos_weight=-1, debug=False)
    return cfg


def fcos():
    cfg = retinanet()
    cfg.update(type='FCOS', bbox_head=dict(
        type='FCOSHead', num_classes=len(CLASSES), in_channels=16,
        stacked_convs=1, feat_channels=16, strides=[8, 16, 32],
        regress_ranges=((-1, 32), (32, 64), (64, 1e8)),
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                      alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='IoULoss', loss_weight=1.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True,
                             loss_weight=1.0)))
    cfg['train_cfg'] = None
    return cfg


def faster_rcnn():
    return dict(
        type='FasterRCNN', data_preprocessor=PRE, backbone=SUPERNET,
        neck=NECK,
        rpn_head=dict(
            type='RPNHead', in_channels=16, feat_channels=16,
            anchor_generator=dict(type='AnchorGenerator', scales=[4],
                                  ratios=[1.0], strides=[8, 16, 32]),
            bbox_coder=CODER,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True,
                          loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        roi_head=dict(
            type='StandardRoIHead',
            bbox_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(type='RoIAlign', output_size=7,
                               sampling_ratio=0),
                out_channels=16, featmap_strides=[8, 16, 32]),
            bbox_head=dict(
                type='Shared2FCBBoxHead', in_channels=16, fc_out_channels=32,
                roi_feat_size=7, num_classes=len(CLASSES), bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                    target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=False,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False,
                              loss_weight=1.0),
                loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
        train_cfg=dict(
            rpn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7,
                                   neg_iou_thr=0.3, min_pos_iou=0.3,
                                   match_low_quality=True,
                                   ignore_iof_thr=-1),
                     sampler=dict(type='RandomSampler', num=64,
                                  pos_fraction=0.5, neg_pos_ub=-1,
                                  add_gt_as_proposals=False),
                     allowed_border=-1, pos_weight=-1, debug=False),
            rpn_proposal=dict(nms_pre=200, max_per_img=100,
                              nms=dict(type='nms', iou_threshold=0.7),
                              min_bbox_size=0),
            rcnn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                                    neg_iou_thr=0.5, min_pos_iou=0.5,
                                    match_low_quality=False,
                                    ignore_iof_thr=-1),
                      sampler=dict(type='RandomSampler', num=32,
                                   pos_fraction=0.25, neg_pos_ub=-1,
                                   add_gt_as_proposals=True),
                      pos_weight=-1, debug=False)),
        test_cfg=dict(
            rpn=dict(nms_pre=200, max_per_img=100,
                     nms=dict(type='nms', iou_threshold=0.7),
                     min_bbox_size=0),
            rcnn=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=20)))


def search(detector=None, **kw):
    cfg = dict(type='DetCreamSearch', detector=detector or retinanet(),
               flops_range=(None, None), board=dict(num_paths=3),
               meta=dict(hidden=8, interval=1, match_images=2),
               evaluator=dict(type='FakeDetMetric'), score_key='fake/score',
               sampler=dict(seed=0))
    cfg.update(kw)
    return cfg


def boxes(i):
    """Two boxes of image ``i`` (x1, y1, x2, y2) and their labels."""
    o = 4 * (i % 4)
    return ([[4. + o, 6., 30. + o, 34.], [30., 20. + o, 60., 56.]],
            [i % 3, (i + 1) % 3])


def batch(ids):
    """A raw dataloader batch of synthetic images (uint8, CHW) with
    boxes."""
    g = torch.Generator().manual_seed(sum(ids) + 7)
    inputs, samples = [], []
    for i in ids:
        img = torch.randint(0, 256, (3, SIZE, SIZE), generator=g,
                            dtype=torch.uint8)
        b, lab = boxes(i)
        for (x1, y1, x2, y2), c in zip(b, lab):
            img[c, int(y1):int(y2), int(x1):int(x2)] = 250
        s = DetDataSample(metainfo=dict(
            img_id=i, img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
            scale_factor=(1., 1.), img_path=f'{i}.png'))
        s.gt_instances = InstanceData(bboxes=torch.tensor(b),
                                      labels=torch.tensor(lab))
        inputs.append(img)
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def coco_file(path, ids):
    """A COCO annotation file of the synthetic images ``ids``."""
    images, anns = [], []
    for i in ids:
        images.append(dict(id=i, file_name=f'{i}.png', width=SIZE,
                           height=SIZE))
        for (x1, y1, x2, y2), c in zip(*boxes(i)):
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=c + 1,
                             bbox=[x1, y1, x2 - x1, y2 - y1],
                             area=(x2 - x1) * (y2 - y1), iscrowd=0))
    cats = [dict(id=k + 1, name=n) for k, n in enumerate(CLASSES)]
    path.write_text(json.dumps(dict(images=images, annotations=anns,
                                    categories=cats)))
    return str(path)


@METRICS.register_module(force=True)
class FakeDetMetric(BaseMetric):
    """A cheap stand-in for CocoMetric: the mean of each image's five best
    detection scores (depends on the path, costs nothing)."""
    default_prefix = 'fake'

    def process(self, data_batch, data_samples):
        for s in data_samples:
            self.results.append(float(s['pred_instances']['scores'][:5]
                                      .mean()))

    def compute_metrics(self, results):
        return dict(score=sum(results) / len(results))


def build(detector=None, **kw):
    """A :class:`DetCreamSearch` of :func:`search` and its optimisers."""
    from cream_mm.search import CreamOptimWrapperConstructor
    model = DET_MODELS.build(search(detector, **kw))
    optim = CreamOptimWrapperConstructor(dict(
        supernet=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        meta=dict(optimizer=dict(type='SGD', lr=0.1))))(model)
    return model, optim
