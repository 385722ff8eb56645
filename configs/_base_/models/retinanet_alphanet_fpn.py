# RetinaNet with an AlphaNet / AttentiveNAS backbone: the Cream RetinaNet
# with AttentiveNet in place of CreamNet. mb3, mb5, mb7 (blocks.2/4/6;
# strides 8/16/32; 32, 112, 216 channels for AlphaNet-A0) feed the FPN.
_base_ = ['./retinanet_cream_fpn.py']
model = dict(backbone=dict(type='AttentiveNet', arch='alphanet-a0'),
             neck=dict(in_channels=[32, 112, 216]))
