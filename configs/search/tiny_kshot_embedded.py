# Tiny K-shot NAS search (Su et al., ICML 2021) on the tiny Cream space (up
# to 2 layers per stage, 32 px) and the embedded data of
# tiny_cream_embedded.py: K=4 copies of every searched weight merged per
# path by the simplex-net's code; lambda = 1/K for the first 200 of 600
# iterations (1/3, the paper: 5 of 120 epochs), then a supernet step (Eq. 9)
# and a simplex-net step (Eq. 8) per iteration: m=4 paths on 16 images each
# (the paper's m=16 would leave 4 images per path at batch 64, too few for
# BatchNorm's batch statistics). Final: NSGA-II through pymoo in [4, 6]
# MFLOPs (BN re-calibrated on 4 training batches per candidate), export of
# the winner with its merged weights.
_base_ = ['./tiny_cream_embedded.py']
model = dict(
    _delete_=True,
    type='KShotSearch',
    supernet=dict(type='KShotSupernet', num_shots=4,
                  supernet=dict(type='CreamSupernet',
                                space=dict(name='mbconv', max_depths=2,
                                           input_size=32)),
                  simplex=dict(hidden=64)),
    head=dict(type='CreamClsHead', num_classes=10, head_channels=256,
              dropout=0.),
    flops_range=(4e6, 6e6),
    flops_metric='flops',
    warmup=dict(iters=200),
    simplex=dict(interval=1, paths=4),
    recalibrate_bn=True,
    calib_batches=4,
    channels_last=True)
optim_wrapper = dict(
    _delete_=True,
    constructor='KShotOptimWrapperConstructor',
    supernet=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9,
                                 nesterov=True, weight_decay=4e-5)),
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
                                     parents=8, seed=0),
                     export={{_base_.search_export}})]
