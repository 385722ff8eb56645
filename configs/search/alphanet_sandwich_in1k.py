# AlphaNet supernet training (Wang et al., ICML 2021; reference
# alphanet_kshot.md §1.2, configs/train_alphanet_models.yml) on the
# AttentiveNAS space (§1.3) and ImageNet: per step the largest subnet on the
# labels (label smoothing 0.1, dropout 0.2, drop-connect 0.2 in the last two
# stages), then 2 uniformly random subnets and the smallest on the adaptive
# alpha-divergence (alpha in [-1, 1], clip 5) to the largest subnet's
# logits; one SGD step with element-wise gradient value clipping 1.0.
# 64 GPUs x 32 = batch 2048, lr 0.8 (0.1 per 256), 5 warm-up epochs then
# cosine, 360 epochs, SGD Nesterov 0.9, weight decay 1e-5 (none on BN and
# bias), AutoAugment. Afterwards the Pareto-front evolution (§1.5) in
# [200, 1200] MFLOPs with BN re-calibrated on 32 batches per candidate.
#   tools/dist_train.sh configs/search/alphanet_sandwich_in1k.py 8 (x 8 nodes)
_base_ = ['../_base_/models/attentive_supernet.py',
          '../_base_/search/imagenet_search.py',
          '../_base_/search/runtime.py']
model = dict(
    type='SandwichSearch',
    supernet={{_base_.supernet}},
    head=dict(type='AttentiveDynamicHead', num_classes=1000,
              in_channels=224 * 6, head_channels=1984, dropout=0.2),
    flops_range=(None, None),  # sample_active_subnet: uniform, no range
    flops_metric='flops',
    num_random=2,
    kd_loss=dict(type='AdaptiveAlphaDivergence', alpha_min=-1.0,
                 alpha_max=1.0, iw_clip=5.0),
    label_smoothing=0.1,
    max_path_dropout=0.2,
    max_path_drop_connect=0.2,
    recalibrate_bn=True,
    calib_batches=32)
model_wrapper_cfg = dict(type='CreamSearchDDP')
# each subnet's input is resized from the batch to its resolution
# (192-288): crop at the largest so every subnet is downsampled
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=288, backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='AutoAugment', policies='imagenet',
         hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=32, num_workers=8,
                        dataset=dict(pipeline=train_pipeline))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=329, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=288),
    dict(type='PackInputs'),
]
# held-out images scoring the Pareto candidates (as the Cream paper configs):
# 2,048 images of ImageNet val, a seeded random sample (the same on every
# rank and resume; the first 2,048 of a class-sorted val are few classes)
search_val_dataloader = dict(
    batch_size=128, num_workers=8,
    dataset=dict(type='SeededSubset', indices=2048, seed=0, offset=0,
                 dataset=dict(type='ImageNet', data_root='data/imagenet',
                              split='val', pipeline=test_pipeline)),
    sampler=dict(type='DefaultSampler', shuffle=False))
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.8, momentum=0.9, nesterov=True,
                   weight_decay=1e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(type='value', clip_value=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=355, by_epoch=True, begin=5,
         end=360, eta_min=0.0, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=360)
# tuned for 64 GPUs x 32: lr scales by batch / 2,048 (0.1 per 256)
auto_scale_lr = dict(base_batch_size=2048, enable=True)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
custom_hooks = [dict(
    type='SupernetSearchHook', log_interval=0, final='pareto',
    final_args=dict(population=512, generations=20, mutations=128,
                    crossovers=128, mutation_prob=0.2, step=10e6,
                    flops_range=(200e6, 1200e6)),
    export=dict(cls_base='alphanet/alphanet-a0_64xb32_in1k.py',
                det_base='retinanet/retinanet_alphanet-a0_fpn_1x_coco.py',
                cls_input_size=None))]
