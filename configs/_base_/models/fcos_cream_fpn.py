# FCOS with a Cream backbone (mmdet ships no model fragment for FCOS; this is
# mmdet's fcos_r50-caffe_fpn_gn-head model with the backbone replaced).
custom_imports = dict(imports=['cream_mm'], allow_failed_imports=False)
model = dict(
    type='FCOS',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(type='CreamNet', arch='cream-287m', out_indices=(2, 4, 6),
                  frozen_stages=-1, norm_eval=True),
    neck=dict(type='FPN', in_channels=[40, 96, 320], out_channels=256,
              start_level=0, add_extra_convs='on_output', num_outs=5,
              relu_before_extra_convs=True),
    bbox_head=dict(
        type='FCOSHead',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                      alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='IoULoss', loss_weight=1.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True,
                             loss_weight=1.0)),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
