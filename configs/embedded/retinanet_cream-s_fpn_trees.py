# RetinaNet + Cream-S trained briefly from scratch on the embedded tree-crown
# photos (CPU, minutes): the detection part of the README's main job and of
# the tests. Paper-scale counterpart:
# configs/retinanet/retinanet_cream-s_fpn_1x_coco.py.
_base_ = [
    '../_base_/models/retinanet_cream_fpn.py',
    '../_base_/datasets/embedded_trees.py',
    '../_base_/schedules/embedded_det_300i.py',
]
# CPU-sized neck/head: 64 channels and 2 stacked convs instead of 256 and 4
# (the paper-scale head costs ~16x more); the backbone is Cream-S unchanged,
# with BN statistics trained (no ImageNet weights to keep).
model = dict(
    backbone=dict(arch='cream-287m', norm_eval=False),
    neck=dict(out_channels=64),
    bbox_head=dict(num_classes=1, in_channels=64, feat_channels=64,
                   stacked_convs=2),
    # dense small crowns: keep more detections than COCO's 100
    test_cfg=dict(max_per_img=300))
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
