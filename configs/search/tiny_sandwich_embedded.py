# Tiny sandwich-rule supernet (BigNAS / AttentiveNAS in-place distillation
# with the soft-target KL of AttentiveNAS) on the tiny Cream space (up to 2
# layers per stage, 32 px) and the embedded data of tiny_cream_embedded.py:
# each step trains the largest path on the labels (label smoothing 0.1),
# then 2 random paths in [4, 6] MFLOPs and the smallest path on KD against
# the largest path's logits; one SGD step. Final: AlphaNet's Pareto-front
# evolution (BN re-calibrated on 4 training batches per candidate), export.
_base_ = ['./tiny_cream_embedded.py']
model = dict(
    _delete_=True,
    type='SandwichSearch',
    supernet=dict(type='CreamSupernet',
                  space=dict(name='mbconv', max_depths=2, input_size=32)),
    head=dict(type='CreamClsHead', num_classes=10, head_channels=256,
              dropout=0.),
    flops_range=(4e6, 6e6),  # random paths (and the Pareto search range)
    flops_metric='flops',
    num_random=2,
    kd_loss=dict(type='SoftCrossEntropyKD'),
    label_smoothing=0.1,
    recalibrate_bn=True,
    calib_batches=4,
    channels_last=True)
optim_wrapper = dict(
    _delete_=True,
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True,
                   weight_decay=4e-5),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
param_scheduler = [dict(type='LinearLR', start_factor=1.0, end_factor=0.0,
                        by_epoch=False, begin=0, end=600)]
custom_hooks = [dict(type='SupernetSearchHook', log_interval=0,
                     final='pareto',
                     final_args=dict(population=16, generations=3,
                                     mutations=8, crossovers=8,
                                     mutation_prob=0.2, step=0.25e6),
                     export={{_base_.search_export}})]
