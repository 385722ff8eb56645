r"""AlphaNet's adaptive alpha-divergence for knowledge distillation.

AlphaNet (Wang et al., ICML 2021) replaces the KL term of in-place
distillation by the alpha-divergence of the teacher ``p`` from the student
``q`` (both class distributions of one sample),

.. math::

    D_\alpha(p \,\|\, q) = \frac{1}{\alpha(\alpha - 1)}
        \Big(\sum_i p_i^\alpha q_i^{1-\alpha} - 1\Big)
      = \sum_i q_i \, f_\alpha(t_i), \qquad t_i = p_i / q_i,
      \quad f_\alpha(t) = \frac{t^\alpha - 1}{\alpha(\alpha - 1)},

with the limits :math:`D_1 = \mathrm{KL}(p\|q)` (``f = t log t``) and
:math:`D_0 = \mathrm{KL}(q\|p)` (``f = -log t``).  Per sample it takes the
larger of :math:`D_{\alpha_-}` and :math:`D_{\alpha_+}` (defaults
:math:`\alpha_- = -1`, :math:`\alpha_+ = 1`), so that the student is pushed
both to cover the teacher's modes and not to over-estimate the teacher's
uncertainty.  To bound the variance of the gradient the importance ratio is
clipped at :math:`\beta` (``iw_clip``, default 5):
:math:`w = \mathrm{clamp}(t^\alpha, 0, \beta)`.

Exactly as in the authors' code (``loss_ops.py``: ``f_divergence`` and
``AdaptiveLossSoft``), with ``q``, ``p`` and ``t`` detached and only
``log q`` carrying gradient:

* :math:`|\alpha| < 10^{-3}`: :math:`t \leftarrow \mathrm{clamp}(t, 0, \beta)`,
  :math:`f = -\log t`, :math:`\rho = \log t - 1`;
* :math:`|\alpha - 1| < 10^{-3}`: :math:`f = t \log t`, :math:`\rho = t`
  (**no clipping**: plain KL(p||q));
* otherwise: :math:`w = \mathrm{clamp}(t^\alpha, 0, \beta)`,
  :math:`f = (w - 1) / (\alpha(\alpha-1))`,
  :math:`\rho = w / \alpha + 1/(\alpha(\alpha-1))`;

  value :math:`D = \sum_i q_i f_i` and surrogate
  :math:`S = -\sum_i q_i \rho_i \log q_i` whose gradient
  :math:`\nabla S = -\sum_i q_i \rho_i \nabla \log q_i` is the
  score-function form of :math:`\nabla D` (:math:`\rho = t f'(t) - f(t)`;
  exact when no clipping is active).  Per sample the branch with the larger
  (clipped) value is selected (``loss_left > loss_right``, ties go to
  :math:`\alpha_+`) and only that one is back-propagated.

**Deviations from the authors' code** (chosen on purpose):

1. The authors' loss *returns the surrogate* ``S``, which is not the
   divergence and can be negative (the negative logged losses of AlphaNet
   issues #6/#9).  Here the returned value is the (clipped) divergence of
   the selected branch, while the gradient is still exactly ``∇S``:
   ``D.detach() + (S - S.detach())``.  With the default range (α+ = 1, i.e.
   plain unclipped KL, or generally whenever α− or α+ lies in [0, 1], where
   clipping can only raise the value) the returned per-sample maximum is
   ``>= 0``, and it is 0 when student == teacher.  (For α > 1, or α < 0 with
   β < 2, a single *clipped* branch can dip below 0; the unclipped one
   cannot.)
2. Everything is computed in log space from ``log_softmax`` (``log t =
   log p - log q``, ``q w = exp(log q + min(α log t, log β))``,
   ``q t log t = p log t``).  Mathematically identical, but it avoids the
   ``0/0``, ``inf`` and ``0 * log 0`` NaNs of ``p_prob / q_prob`` when a
   softmax underflows (cf. AlphaNet issue #6).
3. An optional ``temperature`` ``T`` (default 1 = the authors' loss):
   ``p = softmax(z_t / T)``, ``q = softmax(z_s / T)`` and the loss is scaled
   by ``T^2`` as in Cream's ``soft_cross_entropy`` and AlphaNet's appendix
   Eq. 8; and an mmengine-style ``loss_weight``.

Gradient value clipping: the authors' docstring advises "to clip the maximum
gradient value (e.g., 1.0) when using this adaptive KD loss", and
``train_alphanet.py`` calls ``torch.nn.utils.clip_grad_value_(params, 1.0)``
(element-wise, not norm clipping) before every ``optimizer.step()``.  In
mmengine (0.10.7 ``OptimWrapper`` supports ``type='value'``, mapping to
``clip_grad_value_`` and applied in ``OptimWrapper.step``) that is::

    optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.8, momentum=0.9, nesterov=True),
        clip_grad=dict(type='value', clip_value=1.0))

Config use of the loss (any ``default_scope``; the class is registered in
mmpretrain's and mmengine's root ``MODELS``)::

    distill_loss = dict(type='AdaptiveAlphaDivergence', alpha_min=-1.0,
                        alpha_max=1.0, iw_clip=5.0)
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS as MMENGINE_MODELS

from ..registry import register_model

_EPS_ALPHA = 1e-3
REDUCTIONS = ('none', 'mean', 'sum')


def alpha_divergence_terms(student_logits: torch.Tensor,
                           teacher_logits: torch.Tensor, alpha: float,
                           iw_clip: float = 1e3, temperature: float = 1.
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample ``(value, surrogate)`` of the authors' ``f_divergence``.

    ``value`` (detached) is the clipped :math:`D_\\alpha(p\\|q)` and
    ``surrogate`` the score-function surrogate
    :math:`-\\sum_i q_i \\rho_i \\log q_i` whose gradient w.r.t. the student
    logits is the (clipped) divergence's gradient.  Both have shape ``(N,)``
    (class dim 1) and are *not* scaled by ``T^2``.  The teacher is detached.
    """
    alpha = float(alpha)
    if not iw_clip > 0:
        raise ValueError(f'iw_clip must be > 0, got {iw_clip}')
    t = float(temperature)
    log_q = F.log_softmax(student_logits / t, dim=1)  # carries the gradient
    log_p = F.log_softmax(teacher_logits.detach() / t, dim=1)
    lq = log_q.detach()
    q = lq.exp()
    log_t = log_p - lq  # log importance ratio log(p / q)
    log_clip = math.log(iw_clip)
    if abs(alpha) < _EPS_ALPHA:  # KL(q || p), t clamped to [0, iw_clip]
        log_tc = log_t.clamp(max=log_clip)
        value = -(q * log_tc).sum(1)
        q_rho = q * (log_tc - 1.)
    elif abs(alpha - 1.) < _EPS_ALPHA:  # KL(p || q), no clipping
        p = log_p.exp()
        value = (p * log_t).sum(1)  # sum q t log t
        q_rho = p  # q * t
    else:
        f_base = 1. / (alpha * (alpha - 1.))
        q_w = (lq + (alpha * log_t).clamp(max=log_clip)).exp()  # q * w
        value = f_base * (q_w - q).sum(1)  # sum q (w - 1) f_base
        q_rho = q_w / alpha + f_base * q
    surrogate = -(q_rho * log_q).sum(1)
    return value, surrogate


def alpha_divergence(student_logits: torch.Tensor,
                     teacher_logits: torch.Tensor, alpha: float,
                     iw_clip: float = 1e3,
                     temperature: float = 1.) -> torch.Tensor:
    """Per-sample :math:`D_\\alpha(p\\|q)` (shape ``(N,)``, not scaled by
    ``T^2``) whose value is the clipped divergence and whose gradient is the
    authors' surrogate gradient."""
    value, surrogate = alpha_divergence_terms(student_logits, teacher_logits,
                                              alpha, iw_clip, temperature)
    return value + (surrogate - surrogate.detach())


@MMENGINE_MODELS.register_module()
@register_model(scopes=('mmpretrain', ))
class AdaptiveAlphaDivergence(nn.Module):
    """AlphaNet's adaptive KD loss :math:`\\max(D_{\\alpha_-}, D_{\\alpha_+})`.

    See the module docstring for the equations and the deviations from the
    authors' ``AdaptiveLossSoft``.  ``alpha_min == alpha_max`` gives a plain
    (clipped) alpha-divergence.

    Args:
        alpha_min (float): :math:`\\alpha_-`. Defaults to -1.
        alpha_max (float): :math:`\\alpha_+`. Defaults to 1.
        iw_clip (float): :math:`\\beta`, the clip of :math:`t^\\alpha`.
            Defaults to 5.
        temperature (float): softmax temperature ``T``; the loss is scaled
            by ``T^2``. Defaults to 1 (the authors' loss).
        loss_weight (float): multiplies the loss. Defaults to 1.
        reduction (str): ``'mean'`` (over samples), ``'sum'`` or ``'none'``.
    """

    def __init__(self, alpha_min: float = -1.0, alpha_max: float = 1.0,
                 iw_clip: float = 5.0, temperature: float = 1.0,
                 loss_weight: float = 1.0, reduction: str = 'mean'):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f'reduction={reduction!r}: allowed '
                             f'{", ".join(REDUCTIONS)}')
        if not iw_clip > 0:
            raise ValueError(f'iw_clip must be > 0, got {iw_clip}')
        if not temperature > 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.alpha_min = float(alpha_min)
        self.alpha_max = float(alpha_max)
        self.iw_clip = float(iw_clip)
        self.temperature = float(temperature)
        self.loss_weight = float(loss_weight)
        self.reduction = reduction

    def forward(self, student_logits: torch.Tensor,
                teacher_logits: torch.Tensor) -> torch.Tensor:
        """Loss of student logits ``(N, C)`` against teacher logits
        ``(N, C)`` (detached here)."""
        args = (student_logits, teacher_logits)
        kw = dict(iw_clip=self.iw_clip, temperature=self.temperature)
        v_left, s_left = alpha_divergence_terms(*args, self.alpha_min, **kw)
        v_right, s_right = alpha_divergence_terms(*args, self.alpha_max, **kw)
        left = v_left > v_right  # authors: ind = gt(loss_left, loss_right)
        value = torch.where(left, v_left, v_right)
        surrogate = torch.where(left, s_left, s_right)
        loss = value.detach() + (surrogate - surrogate.detach())
        loss = loss * (self.loss_weight * self.temperature**2)
        if self.reduction == 'mean':
            return loss.mean()
        if self.reduction == 'sum':
            return loss.sum()
        return loss

    def extra_repr(self) -> str:
        return (f'alpha_min={self.alpha_min}, alpha_max={self.alpha_max}, '
                f'iw_clip={self.iw_clip}, temperature={self.temperature}, '
                f'loss_weight={self.loss_weight}, '
                f'reduction={self.reduction!r}')
