# Mask R-CNN + Cream-S on the embedded composite set (CPU-sized neck/heads):
# the items' exact pixel masks (COCO RLE) train the mask head, and
# CocoMetric reports box and mask AP (COCO's full AP/AP50/AP75/APS/M/L set).
_base_ = [
    '../_base_/models/mask-rcnn_cream_fpn.py',
    '../_base_/datasets/embedded_composite.py',
    '../_base_/schedules/embedded_det_300i.py',
]
model = dict(
    backbone=dict(arch='cream-287m', norm_eval=False),
    neck=dict(out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(num_classes=10, in_channels=64, fc_out_channels=256),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(num_classes=10, in_channels=64, conv_out_channels=64,
                       num_convs=2)))

# masks: the dataset fragment loads boxes only. The RLE masks need mmdet's
# default poly2mask=True (it decodes them into BitmapMasks).
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(320, 320), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(320, 320), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
train_dataloader = dict(
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator
