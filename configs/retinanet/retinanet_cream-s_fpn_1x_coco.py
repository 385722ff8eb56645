# RetinaNet + Cream-S (287M) on COCO, the schedule of §4.4 / Table 7:
# batch 32 (8 GPUs x 4), SGD momentum 0.9, wd 1e-4, lr 0.04, x0.1 at epochs
# 8 and 11, 12 epochs. COCO at data/coco/ (mmdet's layout).
# The backbone starts from the ImageNet weights converted from the authors'
# release: python tools/convert_official_checkpoint.py <287.pth.tar> \
#     --out-backbone checkpoints/cream-287m_backbone.pth
_base_ = [
    '../_base_/models/retinanet_cream_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/schedules/coco_table7_1x.py',
]
pretrained = 'checkpoints/cream-287m_backbone.pth'
model = dict(backbone=dict(
    arch='cream-287m',
    init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                  prefix='backbone.')))
train_dataloader = dict(batch_size=4, num_workers=4)
