"""Leaving autocast for a region that must run in the tensors' own dtype."""
from __future__ import annotations

import contextlib

import torch


def no_autocast(device_type: str):
    """``torch.autocast(device_type, enabled=False)`` where the device type
    has autocast (CPU, CUDA, ...); a null context elsewhere (e.g. ``meta``,
    where ``torch.autocast`` itself raises and nothing is ever autocast)."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()
