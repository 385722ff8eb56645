# K-shot NAS with joint operation + channel search (§4, Eq. 11-17) on the
# AttentiveNAS space (elastic widths, depths, kernels, expansions,
# resolutions 192-288; configs/_base_/models/attentive_supernet.py) and
# ImageNet, with the paper's schedule (_base_/search/kshot_paper.py: K=8,
# batch 1024, SGD Nesterov 0.9, lr 0.12 cosine, 120 epochs, lambda = 1/K
# for 5 epochs, m=16). The simplex-net gets its channel branch on the width
# encoding; simplex steps draw the 16 paths as 4 architectures x 4 widths
# so that the width regulariser r_c has pairs: tau=0.3 and alpha=1 as the
# paper;
# the distance threshold m of Eq. 15 is not stated in the paper and not
# checked against public code (none exists) -- None uses the median l1
# width distance of each group. NSGA-II as in kshot_paper_in1k.py.
# (The paper's own channel space is SPOS's with width factors
# {0.2, ..., 1.0}; this is the AttentiveNAS space of this project.)
#   tools/dist_train.sh configs/search/kshot_paper_attentive_in1k.py 8
_base_ = ['../_base_/search/kshot_paper.py',
          '../_base_/models/attentive_supernet.py']
model = dict(
    supernet=dict(type='KShotSupernet', num_shots=8,
                  supernet={{_base_.supernet}}, simplex=dict(hidden=64)),
    head=dict(type='AttentiveDynamicHead', num_classes=1000,
              in_channels=224 * 6, head_channels=1984, dropout=0.),
    simplex=dict(widths_per_arch=4, threshold=None))
# each subnet's input is resized from the batch to its resolution
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=288, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=329, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=288),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
search_val_dataloader = dict(dataset=dict(dataset=dict(pipeline=test_pipeline)))
custom_hooks = [dict(
    type='SupernetSearchHook', log_interval=0, final='nsga2',
    final_args=dict(population=50, generations=20, parents=20, seed=0,
                    flops_range=(0, 420e6)),
    export=dict(cls_base='alphanet/alphanet-a0_64xb32_in1k.py',
                det_base='retinanet/retinanet_alphanet-a0_fpn_1x_coco.py',
                cls_input_size=None))]
