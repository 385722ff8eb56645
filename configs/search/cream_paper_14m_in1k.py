# Paper settings for a ~14M-FLOPs model (Cream-14M): FLOPs are counted at
# 64 px, so the supernet also trains, scores its board paths and makes the
# final selection at 64 px (eval: bicubic resize to 73, centre crop 64,
# crop 0.875), and the exported retrain config inherits
# configs/cream/cream-14m_16xb128_in1k.py (the retrain recipe at 64 px).
_base_ = ['./cream_paper_287m_in1k.py']
input_size = 64
model = dict(flops_range=(12e6, 15e6),
             supernet=dict(space=dict(input_size=input_size)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=input_size, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=73, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=input_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# the held-out subset and the final data are SeededSubsets of ImageNet val
search_val_dataloader = dict(dataset=dict(dataset=dict(pipeline=test_pipeline)))
final_dataloader = dict(dataset=dict(dataset=dict(pipeline=test_pipeline)))
custom_hooks = [dict(type='CreamSearchHook', log_interval=200,
                     plot_interval=5000, final='board',
                     export=dict(cls_base='cream/cream-14m_16xb128_in1k.py'))]
