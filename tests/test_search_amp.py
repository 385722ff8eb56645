"""Mixed precision in the three search algorithms, on CPU (bfloat16
autocast, torch's CPU GradScaler in mmengine's AmpOptimWrapper): the
constructors take ``--amp``'s keys, every subnet's loss is scaled (the
sandwich rule), Eq. 6's hypergradient stays close to fp32, and each tiny
search config trains under ``tools/train.py --amp``."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper, OptimWrapper, OptimWrapperDict
from mmengine.optim.optimizer import amp_optimizer_wrapper

from conftest import ROOT

import test_sandwich as sw
import test_search_cream as cr
from cream_mm.search import CreamOptimWrapperConstructor
from cream_mm.engine import CPUAmpOptimWrapper
from cream_mm.search.kshot import KShotOptimWrapperConstructor

torch.set_num_threads(1)


@pytest.fixture
def cpu_amp(monkeypatch):
    """mmengine's AmpOptimWrapper on CPU: it asserts a GPU and takes
    torch.cuda's GradScaler; give it torch's CPU GradScaler."""
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    monkeypatch.setattr(amp_optimizer_wrapper, 'GradScaler',
                        lambda **kw: torch.amp.GradScaler('cpu', **kw))


def amp_cfg(cfg: dict, **extra) -> dict:
    """What ``tools/train.py --amp`` does to an optim_wrapper config."""
    cfg = copy.deepcopy(cfg)
    cfg.update(dict(type='AmpOptimWrapper', loss_scale='dynamic',
                    dtype='bfloat16'), **extra)
    return cfg


# ---------------------------------------------------------- constructors
@pytest.mark.parametrize('name', ['cream', 'kshot', 'sandwich'])
def test_tiny_configs_build_amp_wrappers(cpu_amp, name):
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(f'{ROOT}/configs/search/tiny_{name}_embedded.py')
    model = MODELS.build(cfg.model)
    ow = build_optim_wrapper(model, amp_cfg(cfg.optim_wrapper.to_dict()))
    if name == 'sandwich':
        assert isinstance(ow, AmpOptimWrapper)
        return
    assert isinstance(ow, OptimWrapperDict)
    assert isinstance(ow['supernet'], AmpOptimWrapper)
    assert ow['supernet'].cast_dtype == torch.bfloat16
    if name == 'cream':  # Eq. 6 is taken in fp32: no scaler on theta
        assert type(ow['meta']) is OptimWrapper
    else:
        assert isinstance(ow['simplex'], AmpOptimWrapper)


def test_cream_meta_part_refuses_a_loss_scaler():
    cfg = dict(supernet=dict(optimizer=dict(type='SGD', lr=0.1)),
               meta=dict(type='AmpOptimWrapper',
                         optimizer=dict(type='SGD', lr=0.1)))
    with pytest.raises(ValueError, match='optim_wrapper.meta.type'):
        CreamOptimWrapperConstructor(cfg)
    with pytest.raises(ValueError, match='optim_wrapper.supernet.type'):
        KShotOptimWrapperConstructor(dict(
            type='Adam', supernet=dict(optimizer=dict(type='SGD', lr=1)),
            simplex=dict(optimizer=dict(type='SGD', lr=1))))


# ------------------------------------------------------- sandwich rule
def _sandwich_delta(ow_factory):
    model = sw.make_model()
    before = [p.detach().clone() for p in model.parameters()]
    model.train_step(sw.batches(1)[0], ow_factory(model))
    return torch.cat([(p.detach() - b).reshape(-1) for p, b in
                      zip(model.parameters(), before)])


def test_sandwich_every_subnet_gradient_survives_loss_scaling(cpu_amp):
    """One SGD step (lr 1, no momentum) under a 2^16 loss scale with bf16
    autocast moves the weights as fp32 does: every subnet's backward is
    scaled and the accumulated gradient unscaled once. (Scaling only the
    last subnet, the others' gradients are divided by 2^16: the update is
    the smallest subnet's alone.)"""
    def sgd(model):
        return torch.optim.SGD(model.parameters(), lr=1.)
    fp32 = _sandwich_delta(lambda m: OptimWrapper(sgd(m)))
    amp = _sandwich_delta(lambda m: AmpOptimWrapper(
        optimizer=sgd(m), loss_scale=2. ** 16, dtype='bfloat16'))
    assert torch.isfinite(amp).all()
    cos = torch.nn.functional.cosine_similarity(fp32, amp, dim=0)
    ratio = amp.norm() / fp32.norm()
    assert cos > 0.98 and abs(ratio - 1) < 0.05, (float(cos), float(ratio))


# ------------------------------------------------------ Cream, Eq. 6
def _eq6(model, ow, x, y, xv, yv, arch, teacher, meta_in, ctx):
    """(g_CE, hypergradient) of Eq. 6 as train_step takes them."""
    from cream_mm.models.losses import soft_cross_entropy
    from cream_mm.search.precision import unscaled_grads
    params = model.path_parameters(arch)
    with ctx():
        logits = model.forward_path(x, arch)
        q = model.aux_logits(x, teacher) + 8. * F.one_hot(
            y, cr.NUM_CLASSES)
        ce = torch.nn.functional.cross_entropy(logits, y)
        kd = soft_cross_entropy(logits, q)
    g_ce = unscaled_grads(ow, ce, list(params.values()))
    g_kd = unscaled_grads(ow, kd, list(params.values()))
    grads, risk = model.meta_hypergradient(params, g_ce, g_kd, meta_in.to(
        logits.dtype), 0.5, 0.01, arch, xv, yv)
    assert risk.dtype == torch.float32
    flat = lambda ts: torch.cat([t.reshape(-1) for t in ts])  # noqa: E731
    return flat(g_ce), flat(grads)


def test_cream_meta_hypergradient_under_amp_close_to_fp32(cpu_amp):
    """Eq. 6 under AMP (bf16 forwards, a 2^16 loss scale): the supernet
    gradients it uses are unscaled (within bf16 rounding of fp32, not 2^16
    times them) and the hypergradient, taken in fp32 on them, is finite and
    close to the fp32 one. (The held-out risk is taken on the training
    batch, the simulated step is short and the teacher leans to the labels,
    so that R's gradient at w' and g_KD are far from orthogonal: their
    inner product, Eq. 6's factor, is then well above bf16's rounding of
    either.)"""
    from contextlib import nullcontext
    model = cr.make_model()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    amp = AmpOptimWrapper(optimizer=sgd, loss_scale=2. ** 16,
                          dtype='bfloat16')
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, 32, 32, generator=g)
    y = torch.randint(0, cr.NUM_CLASSES, (8, ), generator=g)
    xv, yv = x, y
    meta_in = torch.randn(4, cr.NUM_CLASSES, generator=g)
    args = (x, y, xv, yv, model.sampler.sample(), model.board_arch(0),
            meta_in)
    ref_g, ref_h = _eq6(model, OptimWrapper(sgd), *args, nullcontext)
    amp_g, amp_h = _eq6(model, amp, *args, lambda: amp.optim_context(model))
    assert torch.isfinite(amp_h).all() and ref_h.abs().max() > 0
    for ref, got, tol in ((ref_g, amp_g, 0.1), (ref_h, amp_h, 0.15)):
        cos = torch.nn.functional.cosine_similarity(ref, got, dim=0)
        ratio = got.norm() / ref.norm()
        assert cos > 1 - tol and abs(ratio - 1) < tol, (float(cos),
                                                         float(ratio))


def test_cream_amp_steps_run_in_bfloat16_and_stay_finite(cpu_amp):
    model = cr.make_model(warmup=dict(iters=0))
    model.attach_search_val(cr.batches(2, seed=5))
    ow = CreamOptimWrapperConstructor(amp_cfg(dict(
        supernet=dict(optimizer=dict(type='SGD', lr=0.05)),
        meta=dict(optimizer=dict(type='SGD', lr=0.1)))))(model)
    dtypes = []
    hook = model.head.register_forward_hook(
        lambda m, i, o: dtypes.append(o.dtype))
    for b in cr.batches(3, seed=3):
        log = model.train_step(b, ow)
    hook.remove()
    assert torch.bfloat16 in dtypes  # student, teacher, board forwards
    assert torch.isfinite(log['loss'])
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ---------------------------------------------------- tools/train.py
@pytest.mark.slow
@pytest.mark.parametrize('name', ['cream', 'sandwich', 'kshot'])
def test_train_py_amp_tiny_search(tmp_path, name):
    """``tools/train.py --amp`` as a user runs it without CUDA (no patch):
    the CPU wrapper, bfloat16 autocast, finite weights."""
    from tools.train import main
    opts = ['train_cfg.max_iters=2',
            'custom_hooks.0.final=none', 'train_dataloader.batch_size=16']
    if name != 'sandwich':
        opts.append('model.warmup.iters=0')
    runner = main([f'{ROOT}/configs/search/tiny_{name}_embedded.py',
                   '--amp', '--work-dir', str(tmp_path), '--cfg-options',
                   *opts])
    ow = runner.optim_wrapper
    sup = ow if name == 'sandwich' else ow['supernet']
    assert isinstance(sup, CPUAmpOptimWrapper)
    assert sup.cast_dtype == torch.bfloat16
    assert runner.iter == 2
    model = runner.model
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_cpu_amp_wrapper_scales_and_steps():
    """``--amp`` without CUDA: mmengine's wrapper with the CPU scaler; a
    scaled backward and step give the unscaled fp32 update."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 1)
    ref = copy.deepcopy(lin)
    ow = CPUAmpOptimWrapper(optimizer=torch.optim.SGD(lin.parameters(),
                                                      lr=0.1),
                            loss_scale=1024.)
    x = torch.randn(8, 4)
    ow.update_params(lin(x).pow(2).mean())
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    ref(x).pow(2).mean().backward()
    opt.step()
    assert ow.loss_scaler.get_scale() == 1024.
    torch.testing.assert_close(lin.weight, ref.weight)
    with pytest.raises(ValueError, match='optim_wrapper.dtype'):
        CPUAmpOptimWrapper(optimizer=torch.optim.SGD(lin.parameters(),
                                                     lr=0.1), dtype='half')
