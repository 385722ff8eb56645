# Cream on the detection objective at paper scale (unrun): mmdet's ordinary
# RetinaNet config turned into a Cream detection search by a _base_ delta.
# The hypernetwork (the paper's MBConv space) starts from an ImageNet
# supernet (configs/search/cream_paper_287m_in1k.py's checkpoint,
# CREAM_SUPERNET) and is fine-tuned on COCO train2017 by Alg. 1 with the
# detector's loss; paths are scored by COCO mAP on 500 held-out train2017
# images, the final selection uses the next 500, the retrained detector is
# evaluated on val2017 (never seen by the search). The exported detector
# inherits the Table 7 schedule (retinanet_cream-s_fpn_1x_coco.py).
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['cream_mm'], allow_failed_imports=False)
model = dict(
    _delete_=True, type='DetCreamSearch', detector={{_base_.model}},
    supernet=dict(
        type='CreamSupernet', out_indices=(2, 4, 6), norm_eval=False,
        # FLOPs of the range and the board at 800 px (square)
        space=dict(name='mbconv', max_depths=6, input_size=800),
        init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint=(
            '{{$CREAM_SUPERNET:work_dirs/cream_paper_287m_in1k/latest.pth}}'
        ))),
    neck=dict(start_level=0),
    # the 287M band of Cream-S (at 224 px) at 800 px: x (800/224)^2
    flops_range=(2.5e9, 3.7e9),
    board=dict(num_paths=10),
    meta=dict(hidden=1000, interval=200, match_images=4),
    warmup=dict(epochs=1),
    scoring=dict(screen=False),  # faithful: score every candidate path
    evaluator=dict(type='CocoMetric', metric='bbox', ann_file=(
        'data/coco/annotations/instances_train2017.json')))
_train = dict(type='CocoDataset', data_root='data/coco/',
              ann_file='annotations/instances_train2017.json',
              data_prefix=dict(img='train2017/'),
              filter_cfg=dict(filter_empty_gt=True, min_size=32))
train_dataloader = dict(dataset=dict(
    _delete_=True, type='SeededSubset', seed=0, offset=1000,
    dataset=dict(_train, pipeline={{_base_.train_pipeline}})))
_held_out = dict(
    batch_size=4, num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='SeededSubset', indices=500, seed=0, offset=0,
                 dataset=dict(_train, pipeline={{_base_.test_pipeline}})))
search_val_dataloader = _held_out
final_dataloader = dict(_held_out, dataset=dict(_held_out['dataset'],
                                                offset=500))
optim_wrapper = dict(
    _delete_=True, constructor='CreamOptimWrapperConstructor',
    supernet={{_base_.optim_wrapper}},
    meta=dict(optimizer=dict(type='SGD', lr=1e-4)))
param_scheduler = dict(
    _delete_=True, supernet={{_base_.param_scheduler}},
    meta=[dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0,
               end=12)])
model_wrapper_cfg = dict(type='CreamSearchDDP')
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
train_cfg = dict(val_interval=1000)
custom_hooks = [dict(
    type='CreamSearchHook', log_interval=200, plot_interval=5000,
    final='board', export=dict(
        cls_base='cream/cream-287m_16xb128_in1k.py',
        det_base='retinanet/retinanet_cream-s_fpn_1x_coco.py'))]
