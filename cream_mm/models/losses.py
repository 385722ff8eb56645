"""Losses of prioritized path distillation (Eq. 5).

``L = L_CE(y, p_alpha) + rho * L_KD(q_teacher, p_alpha)`` where ``L_KD`` is
the cross entropy of the student's prediction against the teacher's soft
targets (computed without gradient). The release instead mixes
``(rho * KD + (2 - rho) * CE_ls) / 2`` with label smoothing 0.1; both forms
are linear in the two terms, which the meta update (Eq. 6) relies on.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

LOSS_FORMS = ('paper', 'release')


def soft_cross_entropy(student_logits: torch.Tensor,
                       teacher_logits: torch.Tensor,
                       temperature: float = 1.) -> torch.Tensor:
    """KD of Eq. 5: ``-sum softmax(t/T) log_softmax(s/T)``, batch mean,
    scaled by ``T^2`` (Hinton et al.); the teacher is detached."""
    t = temperature
    q = F.softmax(teacher_logits.detach() / t, dim=1)
    logp = F.log_softmax(student_logits / t, dim=1)
    return -(q * logp).sum(1).mean() * t * t


def loss_coefficients(rho, form: str = 'paper'):
    """``(a, b)`` with ``L = a * CE + b * KD`` for a matching degree rho
    (float or tensor; differentiable in rho)."""
    if form == 'paper':
        return 1. + 0. * rho, rho
    if form == 'release':
        return (2. - rho) / 2., rho / 2.
    raise ValueError(f'loss_form={form!r}: allowed {", ".join(LOSS_FORMS)}')


def distill_loss(ce: torch.Tensor, kd: torch.Tensor | None, rho,
                 form: str = 'paper') -> torch.Tensor:
    """Eq. 5 (``form='paper'``) or the release's mix; CE alone if no KD."""
    if kd is None:
        return ce
    a, b = loss_coefficients(rho, form)
    return a * ce + b * kd
