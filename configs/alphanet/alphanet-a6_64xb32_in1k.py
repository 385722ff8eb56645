# AlphaNet-A6 (709 MFLOPs) trained as a stand-alone network on ImageNet at
# 288 px: the recipe and pipelines of alphanet-a5-base (same input size), another arch.
_base_ = ['./alphanet-a5-base_64xb32_in1k.py']
model = dict(
    backbone=dict(arch='alphanet-a6'),
    head=dict(in_channels=224 * 6))
