# RetinaNet + AlphaNet-A0 (203 MFLOPs) on COCO with the schedule of Cream's
# Table 7 (batch 32, SGD lr 0.04, 12 epochs), as the Cream RetinaNet configs.
# The backbone starts from an ImageNet-trained AttentiveNet (e.g.
# configs/alphanet/alphanet-a0_64xb32_in1k.py, or a subnet exported from a
# trained AttentiveSupernet), saved as a backbone-only checkpoint.
_base_ = [
    '../_base_/models/retinanet_alphanet_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/schedules/coco_table7_1x.py',
]
pretrained = 'checkpoints/alphanet-a0_backbone.pth'
model = dict(backbone=dict(
    arch='alphanet-a0',
    init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                  prefix='backbone.')))
train_dataloader = dict(batch_size=4, num_workers=4)
