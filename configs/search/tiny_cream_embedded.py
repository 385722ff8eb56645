# Tiny Cream search on the embedded classification data (Fashion-MNIST, or
# MNIST-5k) at 32 px: supernet with up to 2 layers per stage, K=5, tau=20,
# 512 held-out images of search_val; 600 iterations, minutes on a CPU.
_base_ = ['../_base_/search/cream_search.py',
          '../_base_/search/embedded_search_data.py',
          '../_base_/search/runtime.py']
img_size = 32
num_classes = 10
model = dict(
    supernet=dict(space=dict(name='mbconv', max_depths=2, input_size=32)),
    head=dict(num_classes=10, head_channels=256),
    flops_range=(4e6, 6e6),
    board=dict(num_paths=5),
    # tau=20: enough Eq. 6 updates in 600 iterations (paper: 200, ~10x
    # cheaper); 8 matching images (paper configs: the release's 4) -- the
    # README's tiny-search, ranking and demo results were measured so
    meta=dict(hidden=128, interval=20, match_images=8),
    # the sigma screen: an opt-in speed-up, not the paper's (which scores
    # every sampled path on the held-out subset, screen=False)
    scoring=dict(screen=True, screen_sigma=0.5),
    warmup=dict(iters=100),
    channels_last=True)  # NHWC: ~1.8x faster steps on CPU at 32 px
optim_wrapper = dict(
    supernet=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9,
                                 weight_decay=4e-5)),
    meta=dict(optimizer=dict(type='SGD', lr=1e-2)))
param_scheduler = dict(
    supernet=[dict(type='LinearLR', start_factor=1.0, end_factor=0.0,
                   by_epoch=False, begin=0, end=600)],
    meta=[dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0,
               end=600)])
train_cfg = dict(type='IterBasedTrainLoop', max_iters=600)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=200, by_epoch=False))
# the export chains to the embedded retraining and detection configs:
# search -> <work_dir>/search/searched_cls.py -> searched_retinanet.py
search_export = dict(cls_base='embedded/cream-14m_fmnist.py',
                     det_base='embedded/retinanet_cream-s_fpn_trees.py',
                     cls_input_size='search')
# Alg. 1 line 14 on held-out images the board never saw: the next 2,048
# images of the search_val permutation (the scoring subset is its first 512)
final_dataloader = dict(
    batch_size=128, num_workers=0,
    dataset=dict(type='SeededSubset', indices=2048, seed=0, offset=512,
                 dataset={{_base_.search_val_subset.dataset}}),
    sampler=dict(type='DefaultSampler', shuffle=False))
custom_hooks = [dict(type='CreamSearchHook', log_interval=200,
                     plot_interval=300, final='board',
                     export=search_export)]
log_processor = dict(by_epoch=False)
