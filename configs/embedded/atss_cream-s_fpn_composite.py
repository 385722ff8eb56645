# ATSS + Cream-S on the embedded composite set (CPU-sized neck/head).
_base_ = [
    '../_base_/models/atss_cream_fpn.py',
    '../_base_/datasets/embedded_composite.py',
    '../_base_/schedules/embedded_det_300i.py',
]
model = dict(
    backbone=dict(arch='cream-287m', norm_eval=False),
    neck=dict(out_channels=64),
    bbox_head=dict(num_classes=10, in_channels=64, feat_channels=64,
                   stacked_convs=2, norm_cfg=dict(type='GN', num_groups=16,
                                                  requires_grad=True)))
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
