# Cream-14M classifier trained briefly on the embedded Fashion-MNIST (CPU,
# ~minutes) at 64 px, the model's own input size: used by tests and the demo.
# Paper-scale counterpart: configs/cream/cream-14m_16xb128_in1k.py.
_base_ = [
    '../_base_/models/cream_classifier.py',
    '../_base_/datasets/embedded_cls.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(arch='cream-14m'),
    head=dict(num_classes=10, dropout=0.1, topk=(1, 5),
              loss=dict(_delete_=True, type='CrossEntropyLoss',
                        loss_weight=1.0)))
train_dataloader = dict(
    batch_size=32,
    dataset=dict(num_per_class=200),
    sampler=dict(type='InfiniteSampler', shuffle=True))
val_dataloader = dict(batch_size=100, dataset=dict(num_per_class=50))
test_dataloader = val_dataloader
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=3e-3, weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=200,
         eta_min=1e-5),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=200, val_interval=200)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200,
                    max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
