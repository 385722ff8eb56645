# Retraining schedule of §4.1: RMSProp (TF-style, momentum 0.9, decay 0.9,
# eps 1e-3), lr 0.064 for batch 2,048 (16 GPUs x 128), wd 1e-5 not on BN/bias,
# 3 warm-up epochs from 1e-6, cosine to 1e-5, 500 epochs, EMA of the weights.
optim_wrapper = dict(
    optimizer=dict(type='RMSpropTF', lr=0.064, alpha=0.9, eps=1e-3,
                   momentum=0.9, weight_decay=1e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 0.064, by_epoch=True, begin=0,
         end=3, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=497, eta_min=1e-5, by_epoch=True,
         begin=3, end=500),
]
train_cfg = dict(by_epoch=True, max_epochs=500, val_interval=5)
val_cfg = dict()
test_cfg = dict()
# tuned for 16 GPUs x 128 = 2,048: lr scales by batch / 2,048 on another
# number of GPUs (auto_scale_lr.enable=False keeps 0.064 as written)
auto_scale_lr = dict(base_batch_size=2048, enable=True)
