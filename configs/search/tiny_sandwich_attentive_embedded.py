# Tiny AlphaNet supernet training on the CPU-sized AttentiveNAS space
# (configs/_base_/models/attentive_supernet_tiny.py: elastic widths, depths
# 1-2, kernels 3/5, expansions 3/4, resolutions 32/48/64) with the embedded
# data: sandwich rule (largest on labels with label smoothing 0.1; 2 random
# subnets -- unconstrained, as AlphaNet's sample_active_subnet -- and the
# smallest on the adaptive alpha-divergence), gradient value clip 1.0, then
# the Pareto-front evolution in [1, 6] MFLOPs and the export.
_base_ = ['../_base_/models/attentive_supernet_tiny.py',
          '../_base_/search/embedded_search_data.py',
          '../_base_/search/runtime.py']
model = dict(
    type='SandwichSearch',
    supernet={{_base_.supernet}},
    head={{_base_.head}},
    flops_range=(None, None),
    num_random=2,
    kd_loss=dict(type='AdaptiveAlphaDivergence', alpha_min=-1.0,
                 alpha_max=1.0, iw_clip=5.0),
    label_smoothing=0.1,
    recalibrate_bn=True,
    calib_batches=4,
    channels_last=True)
model_wrapper_cfg = dict(type='CreamSearchDDP')
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True,
                   weight_decay=1e-5),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    clip_grad=dict(type='value', clip_value=1.0))
param_scheduler = [dict(type='LinearLR', start_factor=1.0, end_factor=0.0,
                        by_epoch=False, begin=0, end=600)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=600)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=200, by_epoch=False))
log_processor = dict(by_epoch=False)
# export: the AttentiveNet backbone config of the winner; the detector's
# neck widths are rewritten for the searched widths
search_export = dict(cls_base='embedded/cream-14m_fmnist.py',
                     det_base='embedded/retinanet_alphanet-a0_fpn_trees.py',
                     cls_input_size='search')
custom_hooks = [dict(type='SupernetSearchHook', log_interval=0,
                     final='pareto',
                     final_args=dict(population=16, generations=3,
                                     mutations=8, crossovers=8,
                                     mutation_prob=0.2, step=0.25e6,
                                     flops_range=(1e6, 6e6)),
                     export=search_export)]
