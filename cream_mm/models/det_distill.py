"""Eq. 4 and Eq. 5 of Cream on a dense detection head.

A dense head (RetinaNet, FCOS, ATSS, GFL, the RPN of a two-stage detector)
predicts, at every anchor / point of every FPN level, a classification
distribution: C independent Bernoullis for a sigmoid head
(``use_sigmoid_cls``), a softmax over C + 1 classes (background last, as in
mmdet) otherwise. Student and teacher paths share the neck and the head and
see the same images, so their anchors coincide one to one and the
classification distributions can be compared anchor by anchor:

* :func:`dense_cls_kd` -- Eq. 5's KD on detection: per anchor, the cross
  entropy of the teacher's distribution (temperature T) under the
  student's, summed over classes for a sigmoid head (the cross entropy of
  the product of Bernoullis), averaged over anchors and images, times T^2;
* :func:`box_distribution_kd` -- the same on the box-side distributions of
  a GFL head (``reg_max + 1`` bins per box side, softmax);
* :func:`pooled_scores` -- Eq. 4's bounded matching input: per image, the
  per-class probabilities pooled over all anchors (max and / or mean), each
  in [0, 1] whatever the image size.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

POOLS = ('max', 'mean', 'max+mean')


def flatten_levels(maps: Sequence[torch.Tensor], channels: int
                   ) -> torch.Tensor:
    """Per-level maps ``(N, A * channels, H, W)`` -> ``(N, sum_l A H W,
    channels)`` (anchor-major, mmdet's order)."""
    return torch.cat([m.permute(0, 2, 3, 1).reshape(m.shape[0], -1, channels)
                      for m in maps], 1)


def dense_cls_kd(student: Sequence[torch.Tensor],
                 teacher: Sequence[torch.Tensor], channels: int,
                 sigmoid: bool, temperature: float = 1.) -> torch.Tensor:
    """KD of Eq. 5 on per-anchor classification outputs (module doc).

    ``student`` / ``teacher``: the head's per-level classification logits;
    ``channels``: the head's ``cls_out_channels``. Sigmoid:
    ``sum_c BCE(sigmoid(s_c / T), sigmoid(t_c / T))``; softmax:
    ``-sum_c softmax(t / T)_c log_softmax(s / T)_c``; anchor mean, T^2.
    The teacher is detached."""
    t = float(temperature)
    s = flatten_levels(student, channels) / t
    q = flatten_levels([m.detach() for m in teacher], channels) / t
    if sigmoid:
        per_anchor = F.binary_cross_entropy_with_logits(
            s, torch.sigmoid(q), reduction='none').sum(-1)
    else:
        per_anchor = -(F.softmax(q, -1) * F.log_softmax(s, -1)).sum(-1)
    return per_anchor.mean() * t * t


def box_distribution_kd(student: Sequence[torch.Tensor],
                        teacher: Sequence[torch.Tensor], reg_max: int,
                        temperature: float = 1.) -> torch.Tensor:
    """KD on a GFL head's box distributions: per box side the soft cross
    entropy over its ``reg_max + 1`` bins, averaged over sides, anchors and
    images, times T^2."""
    t = float(temperature)
    s = flatten_levels(student, reg_max + 1) / t
    q = flatten_levels([m.detach() for m in teacher], reg_max + 1) / t
    return -(F.softmax(q, -1) * F.log_softmax(s, -1)).sum(-1).mean() * t * t


def pooled_scores(cls_scores: Sequence[torch.Tensor], channels: int,
                  num_classes: int, sigmoid: bool, pool: str = 'max'
                  ) -> torch.Tensor:
    """Eq. 4's matching input of a detector path: ``(N, D)`` per-class
    probabilities pooled over every anchor of every level (``D`` =
    ``num_classes``, twice that for ``'max+mean'``); bounded in [0, 1]."""
    if pool not in POOLS:
        raise ValueError(f'match pool={pool!r}: allowed '
                         f'{", ".join(map(repr, POOLS))}')
    logits = flatten_levels(cls_scores, channels).float()
    prob = (torch.sigmoid(logits) if sigmoid
            else F.softmax(logits, -1))[..., :num_classes]
    parts = []
    if pool in ('max', 'max+mean'):
        parts.append(prob.amax(1))
    if pool in ('mean', 'max+mean'):
        parts.append(prob.mean(1))
    return torch.cat(parts, -1)


__all__ = ['POOLS', 'flatten_levels', 'dense_cls_kd', 'box_distribution_kd',
           'pooled_scores']
