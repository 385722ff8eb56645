# Faster R-CNN + Cream-S on the embedded composite set (CPU-sized neck/heads).
_base_ = [
    '../_base_/models/faster-rcnn_cream_fpn.py',
    '../_base_/datasets/embedded_composite.py',
    '../_base_/schedules/embedded_det_300i.py',
]
model = dict(
    backbone=dict(arch='cream-287m', norm_eval=False),
    neck=dict(out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(num_classes=10, in_channels=64, fc_out_channels=256)))
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
