# RetinaNet with a Cream backbone as a drop-in replacement (§4.4): strides
# 8/16/32 of the backbone (blocks.2/4/6: 40, 96, 320 channels) feed the FPN,
# which adds P6/P7 on top as in mmdet's RetinaNet.
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py']
custom_imports = dict(imports=['cream_mm'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='CreamNet',
        arch='cream-287m',
        out_indices=(2, 4, 6),
        frozen_stages=-1,
        norm_eval=True,
        norm_cfg=dict(type='BN', requires_grad=True)),
    neck=dict(in_channels=[40, 96, 320], start_level=0,
              add_extra_convs='on_input', num_outs=5))
