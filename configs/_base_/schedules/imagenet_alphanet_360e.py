# AlphaNet's training recipe (configs/train_alphanet_models.yml; reference
# alphanet_kshot.md §1.2): 64 GPUs x 32 = batch 2048, SGD Nesterov momentum
# 0.9, lr 0.1 per 256 images (0.8), weight decay 1e-5 (none on BN and bias),
# 5 linear warm-up epochs then cosine, 360 epochs in all, per-iteration LR.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.8, momentum=0.9, nesterov=True,
                   weight_decay=1e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=355, by_epoch=True, begin=5,
         end=360, eta_min=0.0, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=360, val_interval=5)
val_cfg = dict()
test_cfg = dict()
# tuned for 64 GPUs x 32: lr scales by batch / 2,048 (0.1 per 256)
auto_scale_lr = dict(base_batch_size=2048, enable=True)
