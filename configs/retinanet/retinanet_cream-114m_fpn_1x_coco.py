# RetinaNet + cream-114m on COCO with the Table 7 schedule of the Cream-S config.
_base_ = ['./retinanet_cream-s_fpn_1x_coco.py']
pretrained = 'checkpoints/cream-114m_backbone.pth'
model = dict(backbone=dict(
    arch='cream-114m',
    init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                  prefix='backbone.')))
