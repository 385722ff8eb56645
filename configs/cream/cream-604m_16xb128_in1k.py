# Cream-L (cream-604m) retrained on ImageNet with the recipe of §4.1 at 224 px.
_base_ = ['./cream-287m_16xb128_in1k.py']
model = dict(backbone=dict(arch='cream-604m'))
