# AlphaNet-A5-SMALL (491 MFLOPs) trained as a stand-alone network on ImageNet at
# 256 px: the recipe and pipelines of alphanet-a4 (same input size), another arch.
_base_ = ['./alphanet-a4_64xb32_in1k.py']
model = dict(
    backbone=dict(arch='alphanet-a5-small'),
    head=dict(in_channels=216 * 6))
