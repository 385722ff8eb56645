"""The algorithm (Alg. 1): Eq. 4-6, warm-up, board updates, checkpoints."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmpretrain.structures import DataSample

from cream_mm.models.losses import soft_cross_entropy
from cream_mm.search import CreamOptimWrapperConstructor, CreamSearch
from cream_mm.search.runtime import bn_batch_stats

torch.set_num_threads(1)
NUM_CLASSES = 4


def make_model(seed=0, **kwargs):
    torch.manual_seed(seed)
    cfg = dict(
        supernet=dict(type='CreamSupernet',
                      space=dict(name='mbconv', max_depths=2, input_size=32)),
        head=dict(type='CreamClsHead', num_classes=NUM_CLASSES, dropout=0.,
                  head_channels=16),
        board=dict(num_paths=3), meta=dict(interval=2, match_images=4,
                                           hidden=16),
        data_preprocessor=dict(type='ClsDataPreprocessor'),
        sampler=dict(seed=seed))
    cfg.update(kwargs)
    return CreamSearch(**cfg)


def make_optim(model, lr=0.05):
    ctor = CreamOptimWrapperConstructor(dict(
        supernet=dict(optimizer=dict(type='SGD', lr=lr, momentum=0.9)),
        meta=dict(optimizer=dict(type='SGD', lr=0.1))))
    return ctor(model)


def batches(n, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [dict(
        inputs=[torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8,
                              generator=g) for _ in range(size)],
        data_samples=[DataSample().set_gt_label(
            torch.randint(0, NUM_CLASSES, (), generator=g))
            for _ in range(size)]) for _ in range(n)]


def train_reading_val_batches(model, steps):
    """Train ``steps`` batches; the indices of the held-out batches read."""
    optim, calls = make_optim(model), []
    inner = model._val_batch
    model._val_batch = lambda i: calls.append(i) or inner(i)
    for b in batches(steps, seed=3):
        model.train_step(b, optim)
    return calls


def test_hypergradient_matches_finite_differences():
    """Eq. 6 through every weight of the path vs central differences."""
    model = make_model().double()
    arch = model.sampler.sample()
    g = torch.Generator().manual_seed(1)
    x, xv = (torch.randn(6, 3, 32, 32, generator=g, dtype=torch.float64)
             for _ in range(2))
    y = torch.randint(0, NUM_CLASSES, (6, ), generator=g)
    yv = torch.randint(0, NUM_CLASSES, (6, ), generator=g)
    teacher = model.board_arch(0)
    with torch.no_grad():
        q = model.aux_logits(x, teacher)
        meta_in = torch.randn(4, NUM_CLASSES, generator=g,
                              dtype=torch.float64)
    params = model.path_parameters(arch)
    # the model's exact hypergradient
    logits = model.forward_path(x, arch)
    ce, kd = F.cross_entropy(logits, y), soft_cross_entropy(logits, q)
    g_ce = torch.autograd.grad(ce, list(params.values()), retain_graph=True)
    g_kd = torch.autograd.grad(kd, list(params.values()))
    lr = 0.5
    rho0 = float(model.meta_net(meta_in).detach())
    grads, _ = model.meta_hypergradient(params, g_ce, g_kd, meta_in, rho0,
                                        lr, arch, xv, yv)

    def risk(theta_delta):
        """R(w - lr grad_w(CE + rho(theta) KD)) from scratch."""
        meta = copy.deepcopy(model.meta_net)
        with torch.no_grad():
            for p, d in zip(meta.parameters(), theta_delta):
                p += d
            rho = float(meta(meta_in))
        out = model.forward_path(x, arch)
        loss = F.cross_entropy(out, y) + rho * soft_cross_entropy(out, q)
        gr = torch.autograd.grad(loss, list(params.values()))
        new = {n: p.detach() - lr * gi
               for (n, p), gi in zip(params.items(), gr)}
        with torch.no_grad(), bn_batch_stats(model):
            out = torch.func.functional_call(model, new, (xv, ),
                                             dict(arch=arch))
        return float(F.cross_entropy(out, yv))

    eps = 1e-4
    for seed in range(3):  # random directions in theta-space
        gen = torch.Generator().manual_seed(seed)
        v = [torch.randn(p.shape, generator=gen, dtype=torch.float64)
             for p in model.meta_net.parameters()]
        fd = (risk([eps * d for d in v]) - risk([-eps * d for d in v])) / (
            2 * eps)
        an = sum(float((gr * d).sum()) for gr, d in zip(grads, v))
        assert abs(fd - an) <= 1e-6 + 1e-4 * abs(fd), (fd, an)
        assert abs(an) > 1e-7
    # it flows through all the path's weights, not the stem alone (release)
    stem_only = [gk if n == 'backbone.conv_stem.weight'
                 else torch.zeros_like(gk) for n, gk in zip(params, g_kd)]
    grads_stem, _ = model.meta_hypergradient(params, g_ce, stem_only, meta_in,
                                             rho0, lr, arch, xv, yv)
    full, part = grads[0].norm(), (grads[0] - grads_stem[0]).norm()
    assert part > 0.5 * full
    assert len(params) == sum(1 for _ in model.path_parameters(arch))
    assert any(n.startswith('backbone.blocks.3.') for n in params)
    assert 'head.classifier.weight' in params


def test_spos_step_has_no_distillation_and_plain_optim_wrapper():
    model = make_model(matching='none', use_board=False)
    assert model.meta_net is None and len(model.board) == 0
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.backbone.conv_stem.weight.clone()
    log = model.train_step(batches(1)[0], OptimWrapper(sgd))
    assert 'kd' not in log and 'board_best' not in log
    assert not torch.equal(before, model.backbone.conv_stem.weight)


def test_bad_config_names_field_and_allowed_values():
    with pytest.raises(ValueError, match="matching='best': allowed 'none'"):
        make_model(matching='best')
    with pytest.raises(ValueError, match="scoring.on='test'"):
        make_model(scoring=dict(on='test'))
    with pytest.raises(ValueError, match="set use_board=True"):
        make_model(matching='random', use_board=False)
    model = make_model()
    with pytest.raises(KeyError, match="'meta' wrapper"):
        model.train_step(batches(1)[0], OptimWrapper(
            torch.optim.SGD(model.parameters(), lr=0.1)))


def test_warmup_then_meta_every_tau_and_board_scoring_on_val():
    model = make_model(warmup=dict(iters=2))
    model.attach_search_val(batches(2, seed=9))
    optim = make_optim(model)
    assert len(model.board) == 3 and model.board.unscored() == [0, 1, 2]
    theta = [p.clone() for p in model.meta_net.parameters()]
    logs = [model.train_step(b, optim) for b in batches(7)]
    assert all('kd' not in log for log in logs[:2])  # warm-up: SPOS only
    assert all('kd' in log for log in logs[2:])
    assert [('meta_risk' in log) for log in logs[2:]] == [True, False,
                                                          True, False, True]
    assert int(model.meta_steps) == 3 and int(model.distill_steps) == 5
    assert not torch.equal(theta[0], model.meta_net.fc1.weight)
    assert model.board.unscored() == []
    # scores are val-subset top-1 multiples of 1/16 (two batches of 8)
    for _, _, _, score in model.board.entries():
        assert abs(score * 16 / 100 - round(score * 16 / 100)) < 1e-9
    rows = model.board_table()
    assert rows[0]['score'] == max(r['score'] for r in rows)


def test_teacher_is_board_path_with_largest_rho():
    model = make_model()
    x = torch.randn(8, 3, 32, 32)
    arch = model.sampler.sample()
    code, res = model.space.encode(arch)
    student = model.forward_path(x, arch)
    teacher, rho, meta_in = model.select_teacher(x, student, arch, code, res)
    z_alpha = model.aux_logits(x[:4], arch)  # same images, same BN
    rhos = [float(model.meta_net(model.aux_logits(x[:4], model.board_arch(k))
                                 - z_alpha).detach())
            for k in range(3)]
    assert teacher == model.board_arch(max(range(3), key=rhos.__getitem__))
    assert rho == pytest.approx(max(rhos), rel=1e-5)
    fixed = make_model(matching='fixed')
    t, w, _ = fixed.select_teacher(x, student, arch, code, res)
    assert t == fixed.largest and w == 1.0


def test_path_matched_with_itself_differs_by_exactly_zero():
    """Eq. 4: both sides on the same images under the same BN statistics,
    so a board path equal to the student gives a zero logit difference
    (the student's training-forward logits, BN over the whole batch, do
    not)."""
    model = make_model()
    x = torch.randn(8, 3, 32, 32)
    arch = model.sampler.sample()
    code, res = model.space.encode(arch)
    student = model.forward_path(x, arch)
    model.board_arch = lambda k: arch  # every board slot is the student
    seen = []
    model.meta_net.register_forward_hook(
        lambda mod, inp, out: seen.append(inp[0].detach().clone()))
    _, _, meta_in = model.select_teacher(x, student, arch, code, res)
    assert seen and seen[0].shape == (3, 4, NUM_CLASSES)
    assert float(seen[0].abs().max()) == 0.
    assert float(meta_in.abs().max()) == 0.
    # the training forward's logits of the same images differ clearly
    assert float((model.aux_logits(x[:4], arch) - student[:4]).abs().mean()
                 ) > 1e-3


def test_matching_uses_the_first_match_images_of_the_batch():
    """Eq. 4 on the release's 4 images by default, any number by config,
    the whole batch with None."""
    x = torch.randn(8, 3, 32, 32)
    for match, seen in ((None, 8), (2, 2), ('default', 4)):
        meta = dict(interval=2, hidden=16)
        if match != 'default':
            meta['match_images'] = match
        model = make_model(meta=meta)
        arch = model.sampler.sample()
        code, res = model.space.encode(arch)
        student = model.forward_path(x, arch)
        _, _, meta_in = model.select_teacher(x, student, arch, code, res)
        assert meta_in.shape == (seen, NUM_CLASSES)


def test_release_scoring_on_training_batch():
    model = make_model(scoring=dict(on='train_batch'), board=dict(
        num_paths=3, rule='release'), distill=dict(loss_form='release',
                                                   label_smoothing=0.1),
        meta=dict(interval=2, match_images=4, hidden=16,
                  risk_on='train_batch'))
    optim = make_optim(model)
    for b in batches(3):
        log = model.train_step(b, optim)
    assert model.board.unscored() == [] and 'board_best' in log


def test_state_dict_holds_board_sampler_and_meta_and_resume_is_exact():
    data = batches(6)

    def run(model, optim, steps):
        for b in steps:
            model.train_step(b, optim)

    ref = make_model()
    ref.attach_search_val(batches(2, seed=9))
    ref_optim = make_optim(ref)
    run(ref, ref_optim, data)

    first = make_model()
    first.attach_search_val(batches(2, seed=9))
    optim = make_optim(first)
    run(first, optim, data[:3])
    state = copy.deepcopy(first.state_dict())
    optim_state = copy.deepcopy(optim.state_dict())
    assert any(k.startswith('board.') for k in state)
    assert 'sampler.rng_state' in state
    assert 'meta_net.fc1.weight' in state

    resumed = make_model(seed=5)  # different init: all must come from state
    resumed.attach_search_val(batches(2, seed=9))
    resumed.load_state_dict(state)
    optim2 = make_optim(resumed)
    optim2.load_state_dict(optim_state)
    run(resumed, optim2, data[3:])
    a, b = ref.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_early_stopped_confirmation_gives_the_same_board():
    """scoring.early_stop: the board after many steps equals the board of
    full held-out evaluations, with fewer images evaluated."""
    def run(early_stop):
        model = make_model(board=dict(num_paths=2),
                           scoring=dict(early_stop=early_stop))
        model.attach_search_val(batches(4, seed=9))
        for k in range(2):  # strong board: random-label paths can't enter
            model.board.set_score(k, 50. + 10 * k)
        return model, sum(train_reading_val_batches(model, 10))

    full, n_full = run(False)
    fast, n_fast = run(True)
    assert full.board.entries() == fast.board.entries()
    assert 0 < n_fast < n_full  # held-out batches evaluated


def test_entry_threshold_matches_eq3():
    from cream_mm.search.board import PathBoard
    board = PathBoard(num_paths=2, num_layers=3)
    assert board.entry_threshold((0, 0, 0), 0, 5.) is None  # not full
    board.add((0, 0, 0), 0, 4., 30.)
    board.add((1, 1, 1), 0, 6., 20.)
    assert board.entry_threshold((0, 0, 0), 0, 9.) is None  # on board
    assert board.entry_threshold((2, 2, 2), 0, 5.) == 20.
    assert board.entry_threshold((2, 2, 2), 0, 3.) == 20.
    assert board.entry_threshold((2, 2, 2), 0, 7.) == float('inf')
    for acc, flops in [(19.9, 5.), (20., 5.), (35., 3.), (99., 7.)]:
        need = board.entry_threshold((2, 2, 2), 0, flops)
        import copy
        b = copy.deepcopy(board)
        assert (b.update((2, 2, 2), 0, flops, acc) is not None) == \
            (acc >= need)


def test_alpha_divergence_as_the_kd_term():
    """AlphaNet's loss replaces Eq. 5's soft CE from config; Eq. 6 still runs
    and the logged KD is the (non-negative) divergence itself."""
    model = make_model(warmup=dict(iters=1), distill=dict(
        kd_loss=dict(type='AdaptiveAlphaDivergence')))
    ref = make_model(warmup=dict(iters=1))
    assert set(model.state_dict()) == set(ref.state_dict())
    model.attach_search_val(batches(2, seed=9))
    optim = make_optim(model)
    logs = [model.train_step(b, optim) for b in batches(4)]
    kds = [float(log['kd']) for log in logs[1:]]
    assert all(k >= 0 for k in kds) and int(model.meta_steps) >= 1
    x = torch.randn(4, NUM_CLASSES)
    assert float(model.kd_loss(x, x)) == 0.0


def test_entry_screen_needs_a_calibrated_chance_to_enter():
    """screen='entry': skip the held-out confirmation when the training-
    batch top-1 plus the calibrated held-out offset (mean + entry_sigma
    std) stays below the board's entry threshold."""
    model = make_model(scoring=dict(screen='entry', entry_sigma=2.,
                                    calibration_min=10))
    assert not model._screened_out(10., need=50.)  # not calibrated yet
    model.gap_stats.copy_(torch.tensor([10., -5., 4.], dtype=torch.float64))
    assert model._screened_out(50.5, need=50.)   # 50.5 - 5 + 2*2 < 50
    assert not model._screened_out(51.5, need=50.)
    assert not model._screened_out(0., need=None)  # board not full
    sigma_only = make_model(scoring=dict(screen=True))
    sigma_only.gap_stats.copy_(model.gap_stats)
    assert not sigma_only._screened_out(50.5, need=50.)
    assert 'gap_stats' in model.state_dict()  # saved in checkpoints
    with pytest.raises(ValueError, match='scoring.screen'):
        make_model(scoring=dict(screen='entropy'))


def test_entry_screen_confirms_fewer_paths_and_calibrates():
    """Against a strong board, the entry screen evaluates fewer held-out
    batches than the sigma screen once calibrated, and records the gap."""
    def run(screen):
        model = make_model(board=dict(num_paths=2), scoring=dict(
            screen=screen, screen_sigma=-10., calibration_min=2))
        model.attach_search_val(batches(4, seed=9))
        for k in range(2):
            model.board.set_score(k, 90. + k)
        return model, len(train_reading_val_batches(model, 12))

    sigma, n_sigma = run(True)
    entry, n_entry = run('entry')
    assert int(sigma.gap_stats[0]) > int(entry.gap_stats[0]) >= 2
    assert n_entry < n_sigma
    assert sigma.board.entries() == entry.board.entries()
