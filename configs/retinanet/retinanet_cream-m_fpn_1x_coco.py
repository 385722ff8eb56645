# RetinaNet + cream-481m on COCO with the Table 7 schedule of the Cream-S config.
_base_ = ['./retinanet_cream-s_fpn_1x_coco.py']
pretrained = 'checkpoints/cream-481m_backbone.pth'
model = dict(backbone=dict(
    arch='cream-481m',
    init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                  prefix='backbone.')))
