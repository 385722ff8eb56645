# Tiny K-shot NAS with channel search (K-shot NAS §4) on the CPU-sized
# AttentiveNAS space (configs/_base_/models/attentive_supernet_tiny.py:
# elastic widths, depths, kernels, expansions, resolutions 32/48/64) and
# the embedded data: K=4, the simplex-net's channel branch on the width
# encoding, simplex steps of m=8 paths (8 images each at batch 64) drawn as
# 2 architectures x 4 widths so that the width regulariser r_c (Eq. 15-16;
# tau=0.3, alpha=1 as the paper; threshold: the median l1 width distance of
# each group -- the paper gives no value) has positive and negative pairs.
# lambda = 1/K for the first 200 of 600 iterations. Final: NSGA-II in
# [1, 6] MFLOPs, export.
_base_ = ['./tiny_sandwich_attentive_embedded.py']
model = dict(
    _delete_=True,
    type='KShotSearch',
    supernet=dict(type='KShotSupernet', num_shots=4,
                  supernet={{_base_.supernet}}, simplex=dict(hidden=64)),
    head={{_base_.head}},
    flops_range=(None, None),
    warmup=dict(iters=200),
    simplex=dict(interval=1, paths=8, widths_per_arch=4, reg_weight=1.,
                 temperature=0.3, threshold=None),
    recalibrate_bn=True,
    calib_batches=4,
    channels_last=True)
optim_wrapper = dict(
    _delete_=True,
    constructor='KShotOptimWrapperConstructor',
    supernet=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9,
                                 nesterov=True, weight_decay=1e-5),
                  paramwise_cfg=dict(norm_decay_mult=0.,
                                     bias_decay_mult=0.)),
    # the simplex-net's optimiser is not stated in the paper
    simplex=dict(optimizer=dict(type='Adam', lr=1e-3)))
param_scheduler = dict(
    _delete_=True,
    supernet=[dict(type='LinearLR', start_factor=1.0, end_factor=0.0,
                   by_epoch=False, begin=0, end=600)],
    simplex=[dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0,
                  end=600)])
custom_hooks = [dict(type='SupernetSearchHook', log_interval=0,
                     final='nsga2',
                     final_args=dict(population=16, generations=4,
                                     parents=8, seed=0,
                                     flops_range=(1e6, 6e6)),
                     export={{_base_.search_export}})]
