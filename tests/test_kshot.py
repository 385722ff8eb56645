"""K-shot NAS: merged weights (Eq. 4/5), no extra activations, simplex-net
(Eq. 6), warm-up, alternating steps (Eq. 8/9), r_c (Eq. 15-16), export,
resume, a tiny run."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from cream_mm.models import CreamSupernet, KShotSupernet
from cream_mm.models.kshot import merge_shots
from cream_mm.models.simplex_net import SimplexNet, channel_regulariser
from cream_mm.search import KShotOptimWrapperConstructor, KShotSearch

torch.set_num_threads(1)
NUM_CLASSES = 4
SPACE = dict(name='mbconv', max_depths=2, input_size=32)
BASE = dict(type='CreamSupernet', space=SPACE)


def make_supernet(k=4, seed=0):
    torch.manual_seed(seed)
    net = KShotSupernet(supernet=BASE, num_shots=k, simplex=dict(hidden=16))
    net.init_weights()
    return net


def make_model(k=4, seed=0, **kwargs):
    torch.manual_seed(seed)
    cfg = dict(
        supernet=dict(type='KShotSupernet', supernet=BASE, num_shots=k,
                      simplex=dict(hidden=16)),
        head=dict(type='CreamClsHead', num_classes=NUM_CLASSES, dropout=0.,
                  head_channels=16),
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=[128.] * 3,
                               std=[64.] * 3),
        sampler=dict(seed=seed), simplex=dict(paths=4))
    cfg.update(kwargs)
    model = KShotSearch(**cfg)
    model.init_weights()
    return model


def make_optim(model, lr=0.05):
    return KShotOptimWrapperConstructor(dict(
        supernet=dict(optimizer=dict(type='SGD', lr=lr, momentum=0.9)),
        simplex=dict(optimizer=dict(type='Adam', lr=1e-2))))(model)


def batches(n, size=8, seed=0, learnable=False):
    """Random images; ``learnable``: the class sets the colour."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        labels = torch.randint(0, NUM_CLASSES, (size, ), generator=g)
        imgs = []
        for c in labels.tolist():
            img = torch.randint(0, 255, (3, 32, 32), generator=g)
            if learnable:  # class c > 0 lights channel c - 1
                img = img // 8
                if c:
                    img[c - 1] += 200
            imgs.append(img.to(torch.uint8))
        out.append(dict(inputs=imgs, data_samples=[
            DataSample().set_gt_label(c) for c in labels]))
    return out


def randomise(simplex: SimplexNet, seed=0):
    """Random output layers (they start at zero: lambda = 1/K)."""
    torch.manual_seed(seed)
    for branch in (simplex.arch_branch, simplex.channel_branch):
        if branch is not None:
            torch.nn.init.normal_(branch[2].weight, std=0.5)
            torch.nn.init.normal_(branch[2].bias, std=0.5)


def plain_with(kshot: KShotSupernet, code: torch.Tensor) -> CreamSupernet:
    """A plain supernet whose searched weights are sum_k code_k theta_k."""
    plain = CreamSupernet(space=SPACE)
    state = {}
    for n, t in kshot.supernet.state_dict().items():
        state[n] = merge_shots(code, t) if n in kshot.shot_names else t
    plain.load_state_dict(state, strict=True)
    return plain


def test_copies_independent_and_keys_clean():
    net = make_supernet(k=4)
    w = net.supernet.get_parameter('blocks.1.0.candidates.k3e4.conv_pw.weight')
    assert w.shape == (4, 64, 16, 1, 1)
    assert all((w[0] - w[k]).abs().max() > 0.1 for k in range(1, 4))
    # kaiming normal, fan_out = 64
    assert w.std().item() == pytest.approx(math.sqrt(2 / 64), rel=0.15)
    keys = set(net.state_dict())
    assert 'supernet.blocks.1.0.candidates.k3e4.conv_pw.weight' in keys
    assert 'supernet.conv_stem.weight' in keys
    assert net.supernet.get_parameter('conv_stem.weight').dim() == 4
    twin = KShotSupernet(supernet=BASE, num_shots=4, simplex=dict(hidden=16))
    twin.load_state_dict(net.state_dict(), strict=True)


@pytest.mark.parametrize('train', [False, True])
def test_merged_forward_equals_base_with_merged_weights(train):
    net = make_supernet(k=4)
    arch = net.encoder.sample()
    code = torch.softmax(torch.randn(4), 0)
    plain = plain_with(net, code)
    net.train(train), plain.train(train)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x, arch, code)[0], plain(x, arch)[0])


def test_k1_with_code_one_is_the_plain_supernet():
    net = make_supernet(k=1)
    plain = CreamSupernet(space=SPACE)
    plain.load_state_dict({n: t[0] if n in net.shot_names else t
                           for n, t in net.supernet.state_dict().items()},
                          strict=True)
    arch = net.encoder.sample()
    x = torch.randn(2, 3, 32, 32)
    out = net(x, arch, torch.ones(1))[0]
    ref = plain(x, arch)[0]
    assert torch.equal(out, ref)
    out.sum().backward(), ref.sum().backward()
    name = net.path_shot_names(arch)[0]
    assert torch.equal(net.supernet.get_parameter(name).grad[0],
                       plain.get_parameter(name).grad)


def _saved_bytes(fn) -> int:
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total[0]


def test_no_extra_activations():
    """Bytes saved for backward by a K=8 step exceed the one-shot step's by
    at most the path's merged weights (Eq. 5: merged before the forward)."""
    torch.manual_seed(0)
    kshot = KShotSupernet(supernet=BASE, num_shots=8,
                          simplex=dict(hidden=16))
    plain = CreamSupernet(space=SPACE)
    arch = kshot.encoder.sample()
    x = torch.randn(8, 3, 32, 32)
    code = torch.full((8, ), 1 / 8)
    k8 = _saved_bytes(lambda: kshot(x, arch, code)[0].sum())
    one = _saved_bytes(lambda: plain(x, arch)[0].sum())
    merged = sum(kshot.supernet.get_parameter(n)[0].numel() * 4
                 for n in kshot.path_shot_names(arch))
    assert one < k8 <= one + merged
    # and the K copies are never saved: far below a K-fold weight copy
    assert k8 - one < 8 * merged / 4


def test_simplex_net_softmax_warmup_and_channel_branch():
    net = SimplexNet(num_shots=5, arch_dim=7, channel_dim=3, hidden=8)
    a, c = torch.rand(7), torch.rand(3)
    assert torch.equal(net(a, c), torch.full((5, ), 0.2))  # warm-up: 1/K
    net.warmup.fill_(False)
    assert torch.equal(net(a, c), torch.full((5, ), 0.2))  # zero output
    randomise(net)
    lam = net(a, c)
    assert lam.sum().item() == pytest.approx(1.) and (lam > 0).all()
    logits = net.arch_branch(a) + net.channel_branch(c)
    assert torch.allclose(lam, logits.softmax(-1))
    assert not torch.allclose(lam, net(a, torch.zeros(3)))
    with pytest.raises(ValueError, match='channel encoding'):
        net(a)


def test_channel_regulariser_hand_example():
    """Three paths, widths (1), (2), (5), threshold 2: positives (0,1) and
    (1,0); P(c_0|c_1) = e^{s01} / (e^{s01} + e^{s02}), etc."""
    codes = torch.tensor([[0.6, 0.4], [0.5, 0.5], [0.1, 0.9]])
    widths = torch.tensor([[1.], [2.], [5.]])
    tau = 0.3
    s = {(i, j): float(codes[i] @ codes[j]) / tau
         for i in range(3) for j in range(3)}
    p01 = math.exp(s[0, 1]) / (math.exp(s[0, 1]) + math.exp(s[0, 2]))
    p10 = math.exp(s[1, 0]) / (math.exp(s[1, 0]) + math.exp(s[1, 2]))
    expect = -(math.log(p01) + math.log(p10)) / 2
    got = channel_regulariser(codes, widths, threshold=2., temperature=tau)
    assert got.item() == pytest.approx(expect, rel=1e-6)
    # no positive pair: 0; all within the threshold: every ordered pair
    assert channel_regulariser(codes, widths, 0.5).item() == 0.
    assert channel_regulariser(codes, widths, 10.).item() > expect


def test_export_equals_kshot_forward():
    model = make_model(k=4)
    model.backbone.simplex.warmup.fill_(False)
    randomise(model.backbone.simplex)
    arch = model.sampler.sample()
    child = model.backbone.export(arch)
    model.eval(), child.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(child(x)[0], model.backbone(x, arch)[0])
    assert model.backbone.backbone_cfg(arch)['type'] == 'CreamNet'
    # the supernet's K-fold parameters are back in place
    name = model.backbone.shot_names[0]
    assert model.backbone.supernet.get_parameter(name).shape[0] == 4


def _params(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def _changed(before, module):
    return {n for n, p in module.named_parameters()
            if not torch.equal(before[n], p)}


def test_warmup_uses_uniform_code_then_the_simplex_net():
    model = make_model(k=4, warmup=dict(iters=2), simplex=dict(paths=2))
    ow = make_optim(model)
    data = batches(4)
    for i in range(4):
        model.train_step(data[i], ow)
        code = model.last_step['code']
        # warm-up: 1/K; the first code after it is still 1/K (zero output
        # layer, no jump); simplex steps move it
        assert model.last_step['simplex_update'] == (i >= 2)
        assert (code == [0.25] * 4) == (i <= 2)
    assert int(model.simplex_steps) == 2


def test_supernet_step_leaves_simplex_net_unchanged():
    model = make_model(k=4, simplex=dict(interval=1000))
    model.iter.fill_(1)  # past warm-up, no simplex step due
    ow = make_optim(model)
    sup = _params(model.backbone.supernet)
    simplex = _params(model.backbone.simplex)
    model.train_step(batches(1)[0], ow)
    assert not model.last_step['simplex_update']
    assert _changed(simplex, model.backbone.simplex) == set()
    changed = _changed(sup, model.backbone.supernet)
    assert changed and any(n in changed for n in model.backbone.shot_names)


def test_simplex_step_changes_only_the_simplex_net():
    model = make_model(k=4, simplex=dict(paths=4))
    model.backbone.simplex.warmup.fill_(False)
    randomise(model.backbone.simplex)
    ow = make_optim(model)
    sup, head = _params(model.backbone.supernet), _params(model.head)
    bufs = {n: b.clone() for n, b in model.named_buffers()}
    simplex = _params(model.backbone.simplex)
    data = model.data_preprocessor(batches(1)[0], True)
    y = torch.cat([s.gt_label for s in data['data_samples']])
    log = model.simplex_step(data['inputs'], y, ow['simplex'])
    assert log['simplex_ce'] > 0
    assert _changed(sup, model.backbone.supernet) == set()
    assert _changed(head, model.head) == set()
    assert all(torch.equal(b, dict(model.named_buffers())[n])
               for n, b in bufs.items() if 'simplex_steps' not in n)
    assert _changed(simplex, model.backbone.simplex) == set(simplex)
    assert all(p.grad is None for p in model.backbone.supernet.parameters())


def test_simplex_gradient_matches_finite_differences():
    """The simplex step's gradient is d CE / d sigma through the merged
    weights (Eq. 8), checked on one bias of the simplex-net."""
    model = make_model(k=3)
    model.backbone.simplex.warmup.fill_(False)
    randomise(model.backbone.simplex)
    model = model.double()
    model.eval()
    arch = model.sampler.sample()
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    bias = model.backbone.simplex.arch_branch[2].bias

    def loss():
        return F.cross_entropy(model.forward_path(x, arch,
                                                  detach_shots=True), y)
    g = torch.autograd.grad(loss(), bias)[0]
    eps = 1e-6
    with torch.no_grad():
        for k in range(3):
            bias[k] += eps
            up = loss()
            bias[k] -= 2 * eps
            down = loss()
            bias[k] += eps
            assert g[k].item() == pytest.approx(
                ((up - down) / (2 * eps)).item(), rel=1e-4, abs=1e-9)


def test_resume_is_exact():
    """Saving model + optimiser state after 3 steps and continuing equals an
    uninterrupted run (sampler generator, counters, warm-up flag)."""
    data = batches(6)
    model = make_model(k=2, warmup=dict(iters=2), simplex=dict(paths=2))
    ow = make_optim(model)
    for i in range(3):
        model.train_step(data[i], ow)
    state = copy.deepcopy(model.state_dict())
    opt_state = copy.deepcopy(ow.state_dict())
    for i in range(3, 6):
        model.train_step(data[i], ow)
    other = make_model(k=2, seed=7, warmup=dict(iters=2),
                       simplex=dict(paths=2))
    other.load_state_dict(state, strict=True)
    ow2 = make_optim(other)
    ow2.load_state_dict(opt_state)
    for i in range(3, 6):
        other.train_step(data[i], ow2)
    for (n, a), b in zip(model.state_dict().items(),
                         other.state_dict().values()):
        assert torch.equal(a, b), n


def test_loss_decreases_and_val_top1():
    """A tiny run through warm-up and alternating steps (one path: random
    paths of this toy space learn too slowly for 40 steps, with K-shot and
    SPOS alike)."""
    model = make_model(k=4, warmup=dict(iters=10), simplex=dict(paths=4),
                       flops_range=(None, None),
                       sampler=dict(seed=0, fixed_depths=(1, ) * 5,
                                    op_prior=dict(k3e4=1)))
    ow = make_optim(model, lr=0.05)
    data = batches(8, size=16, learnable=True)
    ces = []
    for i in range(40):
        ces.append(float(model.train_step(data[i % 8], ow)['ce']))
    assert int(model.simplex_steps) == 30
    assert sum(ces[-8:]) / 8 < 0.5 * sum(ces[:8]) / 8
    model.attach_search_val(batches(2, size=16, seed=5, learnable=True))
    arch = model.sampler.sample()
    with pytest.raises(RuntimeError, match='attach_calib'):
        model.val_top1(arch)
    model.attach_calib(data[:2])
    assert model.val_top1(arch) > 50  # chance: 25
    model.recalibrate_bn = False
    assert model.val_top1(arch) > 50


def test_rejects_a_plain_supernet():
    with pytest.raises(TypeError, match='KShotSupernet'):
        KShotSearch(supernet=BASE, head=dict(
            type='CreamClsHead', num_classes=4, head_channels=16))
    with pytest.raises(ValueError, match='simplex: unknown'):
        make_model(simplex=dict(pahts=3))


@pytest.mark.parametrize('config', ['tiny_kshot_embedded.py',
                                    'tiny_kshot_attentive_embedded.py'])
def test_tiny_config_trains_searches_and_exports(config, tmp_path):
    """tools/train.py on the tiny configs (Cream space; AttentiveNAS space
    with channel search and r_c): warm-up, alternating steps, NSGA-II,
    export; the exported weights are the merged ones."""
    from tools.train import main as train_main
    n = torch.get_num_threads()
    try:
        runner = train_main([
            f'configs/search/{config}', '--work-dir',
            str(tmp_path), '--cfg-options', 'train_cfg.max_iters=4',
            'model.warmup.iters=2', 'train_dataloader.batch_size=16',
            'model.simplex.paths=4', 'default_hooks.checkpoint.interval=4',
            'search_val_dataloader.dataset.indices=32',
            'custom_hooks.0.final_args.population=4',
            'custom_hooks.0.final_args.generations=1'])
    finally:
        torch.set_num_threads(n)
    model = runner.model
    assert int(model.iter) == 4 and int(model.simplex_steps) == 2
    assert not bool(model.backbone.simplex.warmup)
    out = tmp_path / 'search'
    arch = (out / 'searched.arch').read_text().strip()
    inherited = torch.load(out / 'searched_inherited.pth',
                           weights_only=True)['state_dict']
    child = model.backbone.export(model.sampler.parse(arch)).state_dict()
    assert child and all(torch.equal(inherited[f'backbone.{k}'], v)
                         for k, v in child.items())
    import json
    saved = json.loads((out / 'nsga2.json').read_text())
    assert saved['front'] and saved['evaluated']  # the non-dominated set
    if config == 'tiny_kshot_embedded.py':  # the shared Kendall-tau tool
        from cream_mm.evaluation.ranking import rank_correlation
        res = rank_correlation(f'configs/search/{config}',
                               str(tmp_path / 'iter_4.pth'),
                               tmp_path / 'rank', num_paths=3,
                               train_iters=2, val_images=32, calib_batches=1,
                               logger=lambda *a: None)
        assert res['algorithm'] == 'KShotSearch' and len(res['rows']) == 3
        assert all(0 <= r['supernet_top1'] <= 100 for r in res['rows'])


# ------------------------------------------------ AttentiveNAS space (widths)
def attentive_cfgs():
    from mmengine.config import Config
    cfg = Config.fromfile('configs/_base_/models/attentive_supernet_tiny.py')
    return cfg.supernet.to_dict(), cfg.head.to_dict()


def make_attentive(k=3, seed=0, **kwargs):
    sup, head = attentive_cfgs()
    torch.manual_seed(seed)
    model = KShotSearch(
        supernet=dict(type='KShotSupernet', supernet=sup, num_shots=k,
                      simplex=dict(hidden=16)),
        head=head, sampler=dict(seed=seed),
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=[128.] * 3,
                               std=[64.] * 3), **kwargs)
    model.init_weights()
    return model


def test_attentive_merged_forward_and_export_are_exact():
    model = make_attentive(k=3)
    net = model.backbone
    net.simplex.warmup.fill_(False)
    randomise(net.simplex)
    arch = model.sampler.sample()
    code = net.code(arch)
    assert net.encoder.encode(arch)[1] is not None  # channel encoding
    assert net.simplex.channel_branch is not None
    plain = copy.deepcopy(net.supernet)
    with torch.no_grad():
        for n in net.shot_names:
            mod, _, attr = n.rpartition('.')
            owner = plain.get_submodule(mod)
            owner._parameters[attr] = torch.nn.Parameter(
                merge_shots(code, net.supernet.get_parameter(n)))
    net.eval(), plain.eval()
    size = model.sampler.resolution(arch)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        out = net(x, arch)[-1]
        assert torch.equal(out, plain(x, arch)[-1])
        child = net.export(arch).eval()
        assert torch.equal(child(x)[-1], out)


def test_attentive_width_variants_and_channel_regulariser():
    """Simplex paths come in groups of one architecture with different
    widths, so r_c (Eq. 15-16) has pairs; the simplex step uses it."""
    model = make_attentive(k=3, simplex=dict(paths=8, widths_per_arch=4))
    model.backbone.simplex.warmup.fill_(False)
    randomise(model.backbone.simplex)
    assert model.channel_genes()
    archs = model.simplex_paths(8)
    enc = [model.sampler.encode(a) for a in archs]
    for g in (0, 4):
        group = enc[g:g + 4]
        assert all(torch.equal(a, group[0][0]) for a, _ in group)
        assert len({tuple(c.tolist()) for _, c in group}) == 4
    reg = model.channel_reg(archs)
    assert reg.requires_grad and reg.item() > 0
    # r_c is the mean over groups of channel_regulariser, median threshold
    terms = []
    for g in (0, 4):
        codes = torch.stack([model.backbone.code(a) for a in archs[g:g + 4]])
        widths = torch.stack([c for _, c in enc[g:g + 4]])
        d = torch.cdist(widths.double(), widths.double(), p=1)
        thr = float(d[~torch.eye(4, dtype=torch.bool)].median())
        terms.append(channel_regulariser(codes, widths, thr, 0.3))
    assert reg.item() == pytest.approx(float(sum(terms)) / 2, rel=1e-6)
    ow = make_optim(model)
    simplex = _params(model.backbone.simplex)
    data = model.data_preprocessor(batches(1, size=16)[0], True)
    y = torch.cat([s.gt_label for s in data['data_samples']])
    log = model.simplex_step(data['inputs'], y, ow['simplex'])
    assert log['r_c'] > 0
    assert 'channel_branch.0.weight' in _changed(simplex,
                                                 model.backbone.simplex)


def test_attentive_train_steps():
    model = make_attentive(k=2, warmup=dict(iters=1),
                           simplex=dict(paths=4, widths_per_arch=2))
    ow = make_optim(model)
    for data in batches(3, size=8):
        log = model.train_step(data, ow)
        assert torch.isfinite(log['loss'])
    assert int(model.simplex_steps) == 2


@pytest.mark.parametrize('config', ['kshot_paper_in1k.py',
                                    'kshot_paper_attentive_in1k.py'])
def test_paper_configs(config):
    from mmengine.config import Config
    cfg = Config.fromfile(f'configs/search/{config}')
    m = cfg.model
    assert m.type == 'KShotSearch' and m.supernet.num_shots == 8
    assert m.warmup == dict(epochs=5)
    assert (m.simplex.paths, m.simplex.temperature, m.simplex.reg_weight) \
        == (16, 0.3, 1.)
    opt = cfg.optim_wrapper.supernet.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.nesterov) == ('SGD', 0.12,
                                                             0.9, True)
    assert cfg.param_scheduler.supernet[0].type == 'CosineAnnealingLR'
    assert cfg.train_cfg.max_epochs == 120
    assert cfg.train_dataloader.batch_size * 8 == 1024
    final = cfg.custom_hooks[0]
    assert final.final == 'nsga2'
    assert (final.final_args.population, final.final_args.generations,
            final.final_args.parents) == (50, 20, 20)
    if 'attentive' in config:
        assert m.supernet.supernet.type == 'AttentiveSupernet'
        assert m.simplex.widths_per_arch == 4
