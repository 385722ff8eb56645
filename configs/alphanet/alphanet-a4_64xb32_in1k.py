# AlphaNet-A4 (444 MFLOPs) trained as a stand-alone network on ImageNet at
# 256 px with AlphaNet's recipe (alphanet_kshot.md §1.2: SGD Nesterov,
# batch 2048, lr 0.8, wd 1e-5, 360 epochs cosine, AutoAugment, label smoothing
# 0.1, dropout 0.2). AlphaNet released no retraining script (AlphaNet#8):
# this is the recipe of its supernet training applied to the fixed arch.
_base_ = [
    '../_base_/models/alphanet_classifier.py',
    '../_base_/datasets/imagenet_bs128_cream.py',
    '../_base_/schedules/imagenet_alphanet_360e.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(arch='alphanet-a4'),
    head=dict(in_channels=216 * 6, head_channels=1984))
_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=256, backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='AutoAugment', policies='imagenet',
         hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='PackInputs'),
]
_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=293, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=256),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=32,
                        dataset=dict(pipeline=_train_pipeline))
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=_test_pipeline))
test_dataloader = val_dataloader
