# Mask R-CNN with a Cream backbone: mmdet's R50-FPN model with the backbone
# replaced (as in faster-rcnn_cream_fpn.py). The FPN starts at stride 8
# (Cream blocks.2), so the RPN anchors and both RoI extractors (boxes and
# masks) move one level up (strides 8..128 / 8..64).
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['cream_mm'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='CreamNet', arch='cream-287m',
                  out_indices=(2, 4, 6), frozen_stages=-1, norm_eval=True),
    neck=dict(in_channels=[40, 96, 320], start_level=0,
              add_extra_convs='on_input', num_outs=5),
    rpn_head=dict(anchor_generator=dict(strides=[8, 16, 32, 64, 128])),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64]),
        mask_roi_extractor=dict(featmap_strides=[8, 16, 32, 64])))
