# RetinaNet + cream-43m on COCO with the Table 7 schedule of the Cream-S config.
_base_ = ['./retinanet_cream-s_fpn_1x_coco.py']
pretrained = 'checkpoints/cream-43m_backbone.pth'
model = dict(backbone=dict(
    arch='cream-43m',
    init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                  prefix='backbone.')))
