# ImageNet for the search: supernet on train (batch 128 per GPU), the
# board's 2,048 held-out images from val (§4.1), no retraining-style
# augmentation (SPOS-like: random resized crop + flip).
_base_ = ['../datasets/imagenet_bs128_cream.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
