"""AlphaNet's adaptive alpha-divergence KD loss and value gradient clipping."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cream_mm.models.alpha_divergence import (AdaptiveAlphaDivergence,
                                              alpha_divergence,
                                              alpha_divergence_terms)

BIG = 1e30  # an iw_clip that never acts


def _logits(n=6, c=5, seed=0, scale=1.5, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g, dtype=dtype) * scale


def closed_form(student, teacher, alpha):
    """D_alpha(p||q) = (sum p^a q^(1-a) - 1) / (a (a - 1)), per sample."""
    p, q = F.softmax(teacher, 1), F.softmax(student, 1)
    return ((p**alpha * q**(1 - alpha)).sum(1) - 1) / (alpha * (alpha - 1))


def kl(a_logits, b_logits):
    """KL(a||b) per sample."""
    la, lb = F.log_softmax(a_logits, 1), F.log_softmax(b_logits, 1)
    return (la.exp() * (la - lb)).sum(1)


def finite_diff(f, s, eps=1e-6):
    """Central differences of the scalar f at s (float64)."""
    fd = torch.zeros_like(s)
    for idx in range(s.numel()):
        d = torch.zeros(s.numel(), dtype=s.dtype)
        d[idx] = eps
        d = d.view_as(s)
        fd.view(-1)[idx] = (f(s + d) - f(s - d)) / (2 * eps)
    return fd


def authors_f_divergence(q_logits, p_logits, alpha, iw_clip=1e3):
    """Verbatim transcription of AlphaNet ``loss_ops.f_divergence``."""
    q_prob = F.softmax(q_logits, dim=1).detach()
    p_prob = F.softmax(p_logits, dim=1).detach()
    q_log_prob = F.log_softmax(q_logits, dim=1)
    importance_ratio = p_prob / q_prob
    if abs(alpha) < 1e-3:
        importance_ratio = importance_ratio.clamp(0, iw_clip)
        f = -importance_ratio.log()
        f_base = 0
        rho_f = importance_ratio.log() - 1.0
    elif abs(alpha - 1.0) < 1e-3:
        f = importance_ratio * importance_ratio.log()
        f_base = 0
        rho_f = importance_ratio
    else:
        iw_alpha = torch.pow(importance_ratio, alpha)
        iw_alpha = iw_alpha.clamp(0, iw_clip)
        f = iw_alpha / alpha / (alpha - 1.0)
        f_base = 1.0 / alpha / (alpha - 1.0)
        rho_f = iw_alpha / alpha + f_base
    loss = torch.sum(q_prob * (f - f_base), dim=1)
    grad_loss = -torch.sum(q_prob * rho_f * q_log_prob, dim=1)
    return loss, grad_loss


def authors_adaptive(output, target, alpha_min=-1.0, alpha_max=1.0,
                     iw_clip=5.0):
    """AlphaNet ``AdaptiveLossSoft.forward`` (reduction='mean')."""
    loss_left, grad_left = authors_f_divergence(output, target, alpha_min,
                                                iw_clip)
    loss_right, grad_right = authors_f_divergence(output, target, alpha_max,
                                                  iw_clip)
    ind = torch.gt(loss_left, loss_right).float()
    return (ind * grad_left + (1.0 - ind) * grad_right).mean(), ind


# (a) values ---------------------------------------------------------------
@pytest.mark.parametrize('alpha', [-1.0, -0.5, 0.5, 2.0, 3.0])
def test_value_equals_closed_form(alpha):
    s, t = _logits(seed=1), _logits(seed=2)
    got = alpha_divergence(s, t, alpha, iw_clip=BIG)
    torch.testing.assert_close(got, closed_form(s, t, alpha))
    loss = AdaptiveAlphaDivergence(alpha, alpha, iw_clip=BIG,
                                   reduction='none')(s, t)
    torch.testing.assert_close(loss, closed_form(s, t, alpha))


def test_alpha_limits_are_kl():
    s, t = _logits(seed=3), _logits(seed=4)
    torch.testing.assert_close(alpha_divergence(s, t, 1.0, BIG), kl(t, s))
    torch.testing.assert_close(alpha_divergence(s, t, 0.0, BIG), kl(s, t))
    # inside the 1e-3 windows the special cases are used
    torch.testing.assert_close(alpha_divergence(s, t, 1.0005, BIG), kl(t, s))
    torch.testing.assert_close(alpha_divergence(s, t, -5e-4, BIG), kl(s, t))
    # and the generic formula approaches them continuously
    torch.testing.assert_close(alpha_divergence(s, t, 1.002, BIG), kl(t, s),
                               rtol=0, atol=5e-3)


@pytest.mark.parametrize('alpha', [-1.0, 0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize('iw_clip', [5.0, 1.5, 1e3])
def test_matches_authors_value_and_gradient(alpha, iw_clip):
    """Clipped value == authors' ``loss``; gradient == grad of authors'
    surrogate ``grad_loss``, also when the clip is active."""
    s, t = _logits(seed=5, scale=3.), _logits(seed=6, scale=3.)
    s1 = s.clone().requires_grad_()
    s2 = s.clone().requires_grad_()
    ref_val, ref_sur = authors_f_divergence(s1, t, alpha, iw_clip)
    ref_sur.sum().backward()
    out = alpha_divergence(s2, t, alpha, iw_clip)
    out.sum().backward()
    torch.testing.assert_close(out.detach(), ref_val)
    torch.testing.assert_close(s2.grad, s1.grad)
    val, sur = alpha_divergence_terms(s, t, alpha, iw_clip)
    torch.testing.assert_close(sur, ref_sur.detach())


def test_clip_is_active_in_the_comparison():
    s, t = _logits(seed=5, scale=3.), _logits(seed=6, scale=3.)
    clipped = alpha_divergence(s, t, -1.0, 5.0)
    assert (clipped < closed_form(s, t, -1.0) - 1e-6).any()


# (b) adaptive selection ----------------------------------------------------
def test_adaptive_picks_larger_per_sample():
    s, t = _logits(n=64, seed=7, scale=2.), _logits(n=64, seed=8, scale=2.)
    loss = AdaptiveAlphaDivergence(reduction='none')(s, t)
    left = alpha_divergence(s, t, -1.0, 5.0).detach()
    right = alpha_divergence(s, t, 1.0, 5.0).detach()
    torch.testing.assert_close(loss, torch.maximum(left, right))
    assert (left > right).any() and (left < right).any()  # both branches


def test_adaptive_backprops_only_selected_branch():
    s, t = _logits(n=64, seed=7, scale=2.), _logits(n=64, seed=8, scale=2.)
    left = alpha_divergence(s, t, -1.0, 5.0).detach() > alpha_divergence(
        s, t, 1.0, 5.0).detach()
    for i in range(len(s)):
        x = s.clone().requires_grad_()
        AdaptiveAlphaDivergence(reduction='none')(x, t)[i].backward()
        y = s[i:i + 1].clone().requires_grad_()
        alpha_divergence(y, t[i:i + 1], -1.0 if left[i] else 1.0,
                         5.0).sum().backward()
        torch.testing.assert_close(x.grad[i], y.grad[0])
        assert x.grad[torch.arange(len(s)) != i].abs().max() == 0


def test_adaptive_gradient_equals_authors():
    s, t = _logits(n=32, seed=9, scale=3.), _logits(n=32, seed=10, scale=3.)
    s1, s2 = s.clone().requires_grad_(), s.clone().requires_grad_()
    ref, _ = authors_adaptive(s1, t)
    ref.backward()
    AdaptiveAlphaDivergence()(s2, t).backward()
    torch.testing.assert_close(s2.grad, s1.grad)


def test_reductions_weight_temperature():
    s, t = _logits(seed=11), _logits(seed=12)
    none = AdaptiveAlphaDivergence(reduction='none')(s, t)
    assert none.shape == (len(s), )
    torch.testing.assert_close(AdaptiveAlphaDivergence()(s, t), none.mean())
    torch.testing.assert_close(
        AdaptiveAlphaDivergence(reduction='sum', loss_weight=0.5)(s, t),
        0.5 * none.sum())
    hot = AdaptiveAlphaDivergence(temperature=2., reduction='none')(s, t)
    ref = AdaptiveAlphaDivergence(reduction='none')(s / 2, t / 2) * 4
    torch.testing.assert_close(hot, ref)
    with pytest.raises(ValueError):
        AdaptiveAlphaDivergence(reduction='avg')


# (c) gradient vs finite differences ----------------------------------------
@pytest.mark.parametrize('alpha', [-1.0, 0.0, 0.5, 1.0, 2.0])
def test_gradient_matches_finite_differences(alpha):
    s, t = _logits(n=3, c=4, seed=13), _logits(n=3, c=4, seed=14)
    x = s.clone().requires_grad_()
    alpha_divergence(x, t, alpha, BIG).sum().backward()

    def f(z):
        if alpha == 0.0:
            return kl(z, t).sum()
        if alpha == 1.0:
            return kl(t, z).sum()
        return closed_form(z, t, alpha).sum()

    torch.testing.assert_close(x.grad, finite_diff(f, s), rtol=1e-6,
                               atol=1e-8)


def test_adaptive_gradient_finite_differences_unclipped():
    s, t = _logits(n=4, c=5, seed=15), _logits(n=4, c=5, seed=16)
    loss_fn = AdaptiveAlphaDivergence(iw_clip=BIG, reduction='sum')
    x = s.clone().requires_grad_()
    loss_fn(x, t).backward()

    def f(z):
        return torch.maximum(closed_form(z, t, -1.0), kl(t, z)).sum()

    torch.testing.assert_close(x.grad, finite_diff(f, s), rtol=1e-6,
                               atol=1e-8)


# (d) non-negativity --------------------------------------------------------
def test_nonnegative_and_zero_at_teacher():
    s, t = _logits(n=256, seed=17, scale=4., dtype=torch.float32), _logits(
        n=256, seed=18, scale=4., dtype=torch.float32)
    loss = AdaptiveAlphaDivergence(reduction='none')(s, t)
    assert (loss >= 0).all()
    assert (AdaptiveAlphaDivergence(reduction='none')(t, t) == 0).all()
    assert AdaptiveAlphaDivergence()(t.clone(), t).item() == 0
    # the authors' returned value (the surrogate) is negative here, ours not
    s, t = _logits(n=256, seed=17, scale=1.), _logits(n=256, seed=18,
                                                      scale=1.)
    assert (AdaptiveAlphaDivergence(reduction='none')(s, t) >= 0).all()
    ref, _ = authors_adaptive(s, t)
    assert ref.item() < 0 < AdaptiveAlphaDivergence()(s, t).item()


def test_extreme_logits_are_finite():
    """Softmax underflow: the authors' p/q gives NaN, log space does not."""
    s = torch.tensor([[0., 200., -200.], [300., 0., 0.]])
    t = torch.tensor([[200., 0., -300.], [0., 0., 300.]])
    x = s.clone().requires_grad_()
    loss = AdaptiveAlphaDivergence()(x, t)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert loss.item() > 0
    assert torch.isnan(authors_adaptive(s, t)[0])  # the authors' p / q


# (e) teacher detached ------------------------------------------------------
def test_teacher_gets_no_gradient():
    s = _logits(seed=19).requires_grad_()
    t = _logits(seed=20).requires_grad_()
    AdaptiveAlphaDivergence()(s, t).backward()
    assert t.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0


# (f) registry ----------------------------------------------------------------
@pytest.mark.parametrize('scope', ['mmpretrain', 'mmdet', 'mmengine'])
def test_build_from_config(scope):
    from mmengine.registry import DefaultScope
    from mmengine.registry import MODELS as ROOT
    from mmdet.registry import MODELS as MMDET
    from mmpretrain.registry import MODELS as MMPRETRAIN
    registry = dict(mmpretrain=MMPRETRAIN, mmdet=MMDET, mmengine=ROOT)[scope]
    cfg = dict(type='AdaptiveAlphaDivergence', alpha_min=-0.5, iw_clip=3.,
               loss_weight=2.)
    with DefaultScope.overwrite_default_scope(scope):
        loss = registry.build(cfg)
    assert isinstance(loss, AdaptiveAlphaDivergence)
    assert (loss.alpha_min, loss.alpha_max, loss.iw_clip,
            loss.loss_weight) == (-0.5, 1.0, 3.0, 2.0)


# (g) value clipping in the optim wrapper -----------------------------------
def test_optim_wrapper_value_clipping():
    from mmengine.optim import OptimWrapper, build_optim_wrapper
    model = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    wrapper = build_optim_wrapper(
        model,
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=1.0),
             clip_grad=dict(type='value', clip_value=1.0)))
    assert isinstance(wrapper, OptimWrapper)
    assert wrapper.clip_func is torch.nn.utils.clip_grad_value_
    x = torch.tensor([[-3.0, 0.5, 2.0]])
    wrapper.update_params(-(model(x)).sum())  # grad = -x
    # element-wise clip of (3, -0.5, -2) to [-1, 1], then w -= lr * grad
    torch.testing.assert_close(model.weight.data,
                               torch.tensor([[-1.0, 0.5, 1.0]]))
