# Paper settings (§4.1) for a ~287M-FLOPs model (Cream-S) on ImageNet.
_base_ = ['../_base_/search/cream_search.py',
          '../_base_/search/imagenet_search.py',
          '../_base_/search/schedule_paper_120e.py',
          '../_base_/search/runtime.py']
model = dict(flops_range=(250e6, 300e6))
# the board's held-out subset: 2,048 images of ImageNet val (§4.1), a
# seeded random sample (the same on every rank and resume)
imagenet_val = dict(type='ImageNet', data_root='data/imagenet', split='val',
                    pipeline={{_base_.test_pipeline}})
search_val_dataloader = dict(
    batch_size=128, num_workers=4,
    dataset=dict(type='SeededSubset', indices=2048, seed=0, offset=0,
                 dataset=imagenet_val),
    sampler=dict(type='DefaultSampler', shuffle=False))
# Alg. 1 line 14: the final selection on the rest of val (47,952 images),
# disjoint from the subset that admitted the board's paths
final_dataloader = dict(
    batch_size=128, num_workers=4,
    dataset=dict(type='SeededSubset', indices=None, seed=0, offset=2048,
                 dataset=imagenet_val),
    sampler=dict(type='DefaultSampler', shuffle=False))
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
# lr 0.5 (meta 1e-4) is tuned for 8 GPUs x 128 = 1,024 images per step (the
# release's batch, SPOS's recipe): on another number of GPUs or batch, every
# lr of the OptimWrapperDict (supernet and meta) scales by batch / 1,024
# (docs/paper_scale.md); auto_scale_lr.enable=False keeps them as written
auto_scale_lr = dict(base_batch_size=1024, enable=True)
