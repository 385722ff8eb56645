# Cream on the detection objective, embedded CPU scale: the composite set's
# ordinary RetinaNet config (the "user's config") turned into a search by
# the delta below. The hypernetwork (up to 2 layers per stage, as the tiny
# classification search) starts from that search's supernet checkpoint
# (CREAM_SUPERNET), images at 160 px. The training split is cut into three
# disjoint parts of one seeded permutation: 320 images train the supernet,
# 40 score paths (Eq. 3, COCO mAP by CocoMetric), 40 make the final
# selection; the val split stays for the retrained detector's AP.
_base_ = ['../embedded/retinanet_cream-s_fpn_composite.py']
custom_imports = dict(imports=['cream_mm'], allow_failed_imports=False)
img = 160
max_iters = 300
_train_root = '{{$CREAM_MM_DATA:data/embedded}}/composite/'
model = dict(
    _delete_=True, type='DetCreamSearch', detector={{_base_.model}},
    supernet=dict(
        type='CreamSupernet', out_indices=(2, 4, 6), norm_eval=False,
        space=dict(name='mbconv', max_depths=2, input_size=img),
        init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint=(
            '{{$CREAM_SUPERNET:work_dirs/tiny_cream_embedded/iter_600.pth}}'))),
    neck=dict(start_level=0),
    # backbone FLOPs at 160 px (the space spans 41-144 M): the image of the
    # classification search's band (4-6 MFLOPs with the head at 32 px, 5th
    # to 95th percentile of its paths), so both routes search one band
    flops_range=(80e6, 115e6),
    board=dict(num_paths=5),
    meta=dict(hidden=128, interval=20, match_images=2),
    warmup=dict(iters=60),
    # the sigma screen: an opt-in speed-up (faithful: screen=False, every
    # path that could enter the board is scored)
    scoring=dict(screen='sigma', screen_sigma=0.5),
    evaluator=dict(type='CocoMetric', metric='bbox',
                   ann_file=_train_root + 'annotations/instances_train.json'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(img, img), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img, img), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor'))]
_split = dict(type='EmbeddedCocoDataset', name='composite', split='train',
              data_root=_train_root,
              filter_cfg=dict(filter_empty_gt=True, min_size=8))
train_dataloader = dict(
    _delete_=True, batch_size=2, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='SeededSubset', indices=320, seed=0, offset=0,
                 dataset=dict(_split, pipeline=train_pipeline)))
search_val_dataloader = dict(
    batch_size=4, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='SeededSubset', indices=40, seed=0, offset=320,
                 dataset=dict(_split, pipeline=test_pipeline)))
final_dataloader = dict(
    batch_size=4, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='SeededSubset', indices=40, seed=0, offset=360,
                 dataset=dict(_split, pipeline=test_pipeline)))
optim_wrapper = dict(
    _delete_=True, constructor='CreamOptimWrapperConstructor',
    supernet={{_base_.optim_wrapper}},
    meta=dict(optimizer=dict(type='SGD', lr=1e-2)))
param_scheduler = dict(
    _delete_=True, supernet={{_base_.param_scheduler}},
    meta=[dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0,
               end=max_iters)])
model_wrapper_cfg = dict(type='CreamSearchDDP')
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                 max_iters=max_iters)
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
custom_hooks = [dict(
    type='CreamSearchHook', log_interval=50, plot_interval=100,
    final='board', export=dict(
        cls_base='embedded/cream-14m_fmnist.py', cls_input_size=32,
        det_base='embedded/retinanet_cream-s_fpn_composite.py'))]
