# K-shot NAS schedule and search of the paper (Su et al., ICML 2021, §3,
# §5.1) for ImageNet, shared by configs/search/kshot_paper_in1k.py (Cream
# MBConv space) and kshot_paper_attentive_in1k.py (AttentiveNAS space with
# channel search), which add the supernet and the head: batch 1024 (8 GPUs
# x 128), SGD Nesterov momentum 0.9, lr 0.12 cosine over 120 epochs,
# lambda = 1/K for the first 5 epochs, then per iteration a supernet step
# (Eq. 9) and a simplex-net step (Eq. 8: m=16 paths on 1024/16 images
# each; r_c with tau=0.3, alpha=1 where widths are searched); NSGA-II
# (population 50, 20 generations, parents from the top 20) in range of the
# 420M-FLOPs budget of the paper's ablations (Tab. 5/6), BN re-calibrated
# on 32 training batches per candidate. Not given by the paper (our
# choices): the simplex-net's optimiser (Adam 1e-3), weight decay 4e-5
# (SPOS's recipe, which the paper follows).
_base_ = ['./imagenet_search.py', './runtime.py']
model = dict(
    type='KShotSearch',
    flops_range=(None, None),  # supernet training: uniform paths
    flops_metric='flops',
    warmup=dict(epochs=5),
    simplex=dict(interval=1, paths=16, reg_weight=1., temperature=0.3),
    recalibrate_bn=True,
    calib_batches=32)
model_wrapper_cfg = dict(type='CreamSearchDDP')
train_dataloader = dict(batch_size=128, num_workers=8)
# held-out images scoring the final candidates: 2,048 images of ImageNet
# val, a seeded random sample (the same on every rank and resume)
search_val_dataloader = dict(
    batch_size=128, num_workers=8,
    dataset=dict(type='SeededSubset', indices=2048, seed=0, offset=0,
                 dataset=dict(type='ImageNet', data_root='data/imagenet',
                              split='val',
                              pipeline={{_base_.test_pipeline}})),
    sampler=dict(type='DefaultSampler', shuffle=False))
optim_wrapper = dict(
    constructor='KShotOptimWrapperConstructor',
    supernet=dict(optimizer=dict(type='SGD', lr=0.12, momentum=0.9,
                                 nesterov=True, weight_decay=4e-5)),
    simplex=dict(optimizer=dict(type='Adam', lr=1e-3)))
param_scheduler = dict(
    supernet=[dict(type='CosineAnnealingLR', T_max=120, by_epoch=True,
                   begin=0, end=120, eta_min=0.,
                   convert_to_iter_based=True)],
    simplex=[dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0,
                  end=120)])
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=120)
# tuned for 8 GPUs x 128: supernet and simplex lr scale by batch / 1,024
auto_scale_lr = dict(base_batch_size=1024, enable=True)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
custom_hooks = [dict(
    type='SupernetSearchHook', log_interval=0, final='nsga2',
    final_args=dict(population=50, generations=20, parents=20, seed=0,
                    flops_range=(0, 420e6)))]
