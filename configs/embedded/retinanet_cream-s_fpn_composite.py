# RetinaNet + Cream-S on the embedded 10-class composite set (CPU, minutes).
_base_ = [
    '../_base_/models/retinanet_cream_fpn.py',
    '../_base_/datasets/embedded_composite.py',
    '../_base_/schedules/embedded_det_300i.py',
]
model = dict(
    backbone=dict(arch='cream-287m', norm_eval=False),
    neck=dict(out_channels=64),
    bbox_head=dict(num_classes=10, in_channels=64, feat_channels=64,
                   stacked_convs=2))
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
