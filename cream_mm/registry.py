"""Registration into both mmpretrain's and mmdet's ``MODELS``.

A Cream backbone must be found by configs of either scope (``default_scope``
``mmpretrain`` or ``mmdet``), so every model of cream_mm that both can use is
registered in both registries under the same name.
"""
from mmdet.registry import MODELS as MMDET_MODELS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS


def register_model(name: str | None = None, scopes=('mmpretrain', 'mmdet')):
    """Class decorator: register into the ``MODELS`` of the given scopes."""
    registries = {'mmpretrain': MMPRETRAIN_MODELS, 'mmdet': MMDET_MODELS}

    def deco(cls):
        for scope in scopes:
            registries[scope].register_module(name=name, module=cls)
        return cls

    return deco
