# RetinaNet + AlphaNet-A0 trained briefly from scratch on the embedded
# tree-crown photos (CPU). Paper-scale counterpart:
# configs/retinanet/retinanet_alphanet-a0_fpn_1x_coco.py.
_base_ = [
    '../_base_/models/retinanet_alphanet_fpn.py',
    '../_base_/datasets/embedded_trees.py',
    '../_base_/schedules/embedded_det_300i.py',
]
# CPU-sized neck/head as configs/embedded/retinanet_cream-s_fpn_trees.py; BN
# statistics trained (no ImageNet weights to keep).
model = dict(
    backbone=dict(arch='alphanet-a0', norm_eval=False),
    neck=dict(out_channels=64),
    bbox_head=dict(num_classes=1, in_channels=64, feat_channels=64,
                   stacked_convs=2),
    test_cfg=dict(max_per_img=300))
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
