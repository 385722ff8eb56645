# AlphaNet-A2 (317 MFLOPs) trained as a stand-alone network on ImageNet at
# 224 px: the recipe and pipelines of alphanet-a1 (same input size), another arch.
_base_ = ['./alphanet-a1_64xb32_in1k.py']
model = dict(
    backbone=dict(arch='alphanet-a2'),
    head=dict(in_channels=224 * 6))
