# RetinaNet + cream-604m on COCO with the Table 7 schedule of the Cream-S config.
_base_ = ['./retinanet_cream-s_fpn_1x_coco.py']
pretrained = 'checkpoints/cream-604m_backbone.pth'
model = dict(backbone=dict(
    arch='cream-604m',
    init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                  prefix='backbone.')))
