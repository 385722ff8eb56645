# FCOS + Cream-S (287M) on COCO with the schedule of the paper's RetinaNet
# experiment (§4.4 / Table 7; as in
# configs/retinanet/retinanet_cream-s_fpn_1x_coco.py):
# batch 32 (8 GPUs x 4), SGD momentum 0.9, wd 1e-4, lr 0.04, x0.1 at epochs
# 8 and 11, 12 epochs. COCO at data/coco/ (mmdet's layout). Not in the paper:
# no reference numbers. Backbone from the converted ImageNet weights:
# python tools/convert_official_checkpoint.py <287.pth.tar> \
#     --out-backbone checkpoints/cream-287m_backbone.pth
_base_ = [
    '../_base_/models/fcos_cream_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/schedules/coco_table7_1x.py',
]
pretrained = 'checkpoints/cream-287m_backbone.pth'
model = dict(backbone=dict(
    arch='cream-287m',
    init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                  prefix='backbone.')))
train_dataloader = dict(batch_size=4, num_workers=4)
# gradient clipping (max norm 35) kept from mmdet's FCOS configs, which all
# train with it; the schedule is otherwise the RetinaNet one
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
