# RetinaNet with an AlphaNet / AttentiveNAS backbone: mb3, mb5, mb7
# (AttentiveNet blocks.2/4/6; strides 8/16/32; 32, 112, 216 channels for
# AlphaNet-A0) feed the FPN, which adds P6/P7 as in mmdet's RetinaNet.
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py']
custom_imports = dict(imports=['cream_mm'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='AttentiveNet',
        arch='alphanet-a0',
        out_indices=(2, 4, 6),
        frozen_stages=-1,
        norm_eval=True,
        norm_cfg=dict(type='BN', requires_grad=True)),
    neck=dict(in_channels=[32, 112, 216], start_level=0,
              add_extra_convs='on_input', num_outs=5))
