# Cream-S (cream-287m) retrained on ImageNet with the recipe of §4.1 at 224 px.
_base_ = [
    '../_base_/models/cream_classifier.py',
    '../_base_/datasets/imagenet_bs128_cream.py',
    '../_base_/schedules/imagenet_rmsproptf_500e.py',
    '../_base_/cls_runtime.py',
]
model = dict(backbone=dict(arch='cream-287m'))
