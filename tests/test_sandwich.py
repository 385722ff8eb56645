"""SandwichSearch (AlphaNet's train_epoch body): which subnets are trained on
what, one optimiser step over accumulated gradients, value clipping, the KD
loss by config, BN re-calibrated scoring, and a decreasing loss."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmpretrain.structures import DataSample

from _compare import assert_same

from cream_mm.models.alpha_divergence import AdaptiveAlphaDivergence
from cream_mm.models.losses import soft_cross_entropy
from cream_mm.search import SandwichSearch, SoftCrossEntropyKD

torch.set_num_threads(1)
NUM_CLASSES = 4
CREAM_TINY = dict(type='CreamSupernet',
                  space=dict(name='mbconv', max_depths=2, input_size=32))


def make_model(seed=0, supernet=CREAM_TINY, head=None, **kwargs):
    torch.manual_seed(seed)
    cfg = dict(supernet=supernet,
               head=head or dict(type='CreamClsHead',
                                 num_classes=NUM_CLASSES, dropout=0.,
                                 head_channels=16),
               data_preprocessor=dict(type='ClsDataPreprocessor'),
               sampler=dict(seed=seed))
    cfg.update(kwargs)
    return SandwichSearch(**cfg)


def make_optim(model, lr=0.05, clip=None, momentum=0.):
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=lr,
                                        momentum=momentum),
                        clip_grad=clip)


def batches(n, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [dict(
        inputs=[torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8,
                              generator=g) for _ in range(size)],
        data_samples=[DataSample().set_gt_label(
            torch.randint(0, NUM_CLASSES, (), generator=g))
            for _ in range(size)]) for _ in range(n)]


def _xy(model, data):
    out = model.data_preprocessor(data, True)
    return out['inputs'], torch.cat([s.gt_label for s in out['data_samples']])


def _peek_paths(model):
    """The paths the next train_step draws (generator state restored)."""
    state = model.sampler.generator.get_state()
    paths = model.step_paths()
    model.sampler.generator.set_state(state)
    return paths


def _reference_grads(model, data, paths, kd=soft_cross_entropy):
    """Gradients of max CE_ls + sum KD(others, teacher) from scratch."""
    ref = copy.deepcopy(model)
    x, y = _xy(ref, data)
    teacher = ref.forward_path(x, paths[0][1])
    total = F.cross_entropy(teacher, y, label_smoothing=0.1)
    teacher = teacher.detach()
    for _, arch in paths[1:]:
        total = total + kd(ref.forward_path(x, arch), teacher)
    total.backward()
    return {n: p.grad for n, p in ref.named_parameters()}


def test_paths_and_loss_inputs():
    """max on labels (CE_ls), then rand0, rand1, min on KD only, each KD
    against the largest subnet's detached logits of this same step."""
    model = make_model()
    data = batches(1)[0]
    paths = _peek_paths(model)
    assert [n for n, _ in paths] == ['max', 'rand0', 'rand1', 'min']
    assert paths[0][1] == model.sampler.extreme(True)
    assert paths[-1][1] == model.sampler.extreme(False)
    x, y = _xy(model, data)
    expect = {n: model.forward_path(x, a).detach() for n, a in paths}
    calls = []

    class Spy(nn.Module):
        def forward(self, student, teacher):
            calls.append((student.detach().clone(), teacher.clone(),
                          teacher.requires_grad))
            return soft_cross_entropy(student, teacher)

    model.kd_loss = Spy()
    log = model.train_step(data, make_optim(model))
    assert len(calls) == 3
    for (student, teacher, needs_grad), name in zip(calls,
                                                    ['rand0', 'rand1',
                                                     'min']):
        assert torch.equal(teacher, expect['max']) and not needs_grad
        assert torch.allclose(student, expect[name], atol=1e-6)
        assert float(log[f'loss_{name}']) == pytest.approx(float(
            soft_cross_entropy(expect[name], expect['max'])), rel=1e-5)
    # the largest subnet's loss is the label-smoothed CE, no KD term
    assert float(log['loss_max']) == pytest.approx(float(F.cross_entropy(
        expect['max'], y, label_smoothing=0.1)), rel=1e-5)
    assert float(log['loss']) == pytest.approx(sum(
        float(log[f'loss_{n}']) for n, _ in paths), rel=1e-6)
    assert model.last_step['paths'] == [model.sampler.key(a)
                                        for _, a in paths]


def test_accumulated_gradients_one_optimizer_step():
    model = make_model()
    data = batches(1)[0]
    ref = _reference_grads(model, data, _peek_paths(model))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ow = make_optim(model, lr=1.0)
    steps = []
    ow.optimizer.step = (lambda f: lambda *a, **k: (steps.append(1),
                                                    f(*a, **k))[1])(
        ow.optimizer.step)
    model.train_step(data, ow)
    assert len(steps) == 1 and ow.inner_count == 1
    moved = 0
    for n, p in model.named_parameters():
        g = ref[n] if ref[n] is not None else torch.zeros_like(p)
        assert torch.allclose(before[n] - p.detach(), g, atol=2e-6), n
        moved += int(ref[n] is not None)
    assert moved > 0
    assert all(p.grad is None for p in model.parameters())  # zeroed


def test_value_clipping_once_on_the_accumulated_gradient():
    """clip_grad value: the update is -lr * clamp(sum of the subnets'
    gradients), not a sum of per-subnet clamps."""
    model = make_model()
    data = batches(1)[0]
    ref = _reference_grads(model, data, _peek_paths(model))
    c = 1e-3
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train_step(data, make_optim(model, lr=1.0,
                                      clip=dict(type='value',
                                                clip_value=c)))
    clipped = 0
    for n, p in model.named_parameters():
        if ref[n] is None:
            continue
        delta = before[n] - p.detach()
        assert torch.allclose(delta, ref[n].clamp(-c, c), atol=1e-7), n
        clipped += int((ref[n].abs() > c).sum())
    assert clipped > 0


def test_kd_loss_by_config():
    assert isinstance(make_model().kd_loss, SoftCrossEntropyKD)
    model = make_model(kd_loss=dict(type='AdaptiveAlphaDivergence'))
    assert isinstance(model.kd_loss, AdaptiveAlphaDivergence)
    data = batches(1)[0]
    paths = _peek_paths(model)
    alpha = AdaptiveAlphaDivergence()
    ref = _reference_grads(model, data, paths, kd=alpha)
    x, _ = _xy(model, data)
    t = model.forward_path(x, paths[0][1]).detach()
    s = model.forward_path(x, paths[-1][1]).detach()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    log = model.train_step(data, make_optim(model, lr=1.0))
    assert float(log['loss_min']) == pytest.approx(float(alpha(s, t)),
                                                   rel=1e-5)
    for n, p in model.named_parameters():
        if ref[n] is not None:
            assert torch.allclose(before[n] - p.detach(), ref[n],
                                  atol=2e-6), n
    with pytest.raises(ValueError, match='num_random=-1'):
        make_model(num_random=-1)


def test_max_path_dropout_only_on_the_largest():
    model = make_model(head=dict(type='CreamClsHead',
                                 num_classes=NUM_CLASSES, dropout=0.5,
                                 head_channels=16),
                       max_path_dropout=0.2)
    seen = []
    for m in model.dropouts:
        m.register_forward_pre_hook(lambda m, i: seen.append(m.p))
    model.train_step(batches(1)[0], make_optim(model))
    assert seen == [0.2, 0., 0., 0.]
    assert [m.p for m in model.dropouts] == [0.5]
    with pytest.raises(ValueError, match='no nn.Dropout'):
        make_model(max_path_dropout=0.2)


def test_loss_decreases():
    model = make_model()
    ow = make_optim(model, lr=0.05)
    data = batches(2, size=8)
    logs = [model.train_step(data[i % 2], ow) for i in range(20)]
    total = [float(r['loss']) for r in logs]
    ce = [float(r['loss_max']) for r in logs]
    assert sum(total[-4:]) / 4 < 0.85 * sum(total[:4]) / 4, total
    assert sum(ce[-4:]) / 4 < 0.6 * sum(ce[:4]) / 4, ce


def test_val_top1_recalibrates_bn():
    from cream_mm.evaluation.ranking import _batch, inherited_accuracy
    model = make_model(calib_batches=2)
    ow = make_optim(model)
    train = batches(3, seed=1)
    for b in train:
        model.train_step(b, ow)
    val = batches(2, size=16, seed=2)
    model.attach_search_val(val)
    arch = model.sampler.sample()
    with pytest.raises(RuntimeError, match='attach_calib'):
        model.val_top1(arch)
    model.attach_calib(train)
    vb = [_batch(model, b) for b in val]
    calib = [_batch(model, b) for b in train[:2]]
    assert model.val_top1(arch) == pytest.approx(
        inherited_accuracy(model, arch, vb, calib, 'recalibrate'))
    model.recalibrate_bn = False
    assert model.val_top1(arch) == pytest.approx(
        inherited_accuracy(model, arch, vb, bn='batch'))
    # forward modes of the selected (largest) subnet
    x, _ = _xy(model, val[0])
    model.eval()
    assert model(x).shape == (16, NUM_CLASSES)
    preds = model(x, val[0]['data_samples'], mode='predict')
    assert len(preds) == 16 and preds[0].pred_score.shape == (NUM_CLASSES, )


# ----------------------------------------------- tools/train.py and resume
def _tiny_config(tmp_path, base, name):
    import textwrap
    from conftest import ROOT
    path = tmp_path / f'{name}.py'
    path.write_text(textwrap.dedent(f"""
        _base_ = ['{ROOT}/configs/search/{base}']
        model = dict(calib_batches=1)
        train_dataloader = dict(batch_size=8)
        search_val_dataloader = dict(batch_size=16,
                                     dataset=dict(indices=32))
        train_cfg = dict(max_iters=4)
        default_hooks = dict(logger=dict(interval=1), checkpoint=dict(
            interval=2))
        custom_hooks = [dict(
            type='SupernetSearchHook', final='pareto',
            final_args=dict(population=4, generations=1, mutations=2,
                            crossovers=2, step=0.25e6),
            export={{{{_base_.search_export}}}})]
        """))
    return str(path)


@pytest.mark.parametrize('base', [
    'tiny_sandwich_embedded.py',
    pytest.param('tiny_sandwich_alpha_embedded.py',
                 marks=pytest.mark.slow),
    pytest.param('tiny_sandwich_attentive_embedded.py',
                 marks=pytest.mark.slow)])
def test_train_tool_runs_and_resumes_exactly(tmp_path, base):
    """4 iterations through tools/train.py (final Pareto search, front
    saved, export written); resuming from iteration 2 ends bit-identical
    (supernet, BN buffers, sampler generator, optimiser, scheduler)."""
    import json
    from tools.train import main
    from cream_mm.engine import safe_load
    config = _tiny_config(tmp_path, base, 'cfg')
    ref = main([config, '--work-dir', str(tmp_path / 'ref')])
    model = ref.model
    assert isinstance(model, SandwichSearch) and int(model.iter) == 4
    if 'alpha' in base:
        assert isinstance(model.kd_loss, AdaptiveAlphaDivergence)
        assert ref.optim_wrapper.clip_grad_kwargs == dict(clip_value=1.0)
    front = json.loads((tmp_path / 'ref/search/pareto.json').read_text())
    lo, hi = model.sampler.flops_range
    assert front['front'] and all(lo <= r['flops'] <= hi
                                  for r in front['evaluated'])
    summary = json.loads((tmp_path / 'ref/search/searched.json')
                         .read_text())
    assert summary['arch'] == front['evaluated'][0]['arch']
    main([config, '--work-dir', str(tmp_path / 'res'), '--resume',
          str(tmp_path / 'ref/iter_2.pth')])
    a = safe_load(str(tmp_path / 'ref/iter_4.pth'))
    b = safe_load(str(tmp_path / 'res/iter_4.pth'))
    assert 'sampler.rng_state' in a['state_dict']
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for k, v in a['state_dict'].items():
        assert torch.equal(v, b['state_dict'][k]), k
    assert_same(a['optimizer'], b['optimizer'])
    assert_same(a['param_schedulers'], b['param_schedulers'])


# ------------------------------------------- the AttentiveNAS space (B's)
def _attentive_model(**kwargs):
    from mmengine.config import Config
    from conftest import ROOT
    base = Config.fromfile(f'{ROOT}/configs/_base_/models/'
                           'attentive_supernet_tiny.py')
    head = dict(base.head, num_classes=NUM_CLASSES)
    return make_model(supernet=base.supernet, head=head, **kwargs)


def test_attentive_space_sandwich_scoring_and_export(tmp_path):
    """The same algorithm on the AttentiveNAS space: extremes of the space,
    elastic head sliced per subnet, one step over accumulated gradients,
    recalibrated scoring = the ranking tool's, export loads strictly."""
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    from cream_mm.evaluation.ranking import _batch, inherited_accuracy
    from cream_mm.search import export_arch
    model = _attentive_model(calib_batches=1)
    space = model.backbone.space
    assert model.largest == space.extreme(True)
    assert model.smallest == space.extreme(False)
    data = batches(1)[0]
    paths = _peek_paths(model)
    ref = _reference_grads(model, data, paths)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    log = model.train_step(data, make_optim(model, lr=1.0))
    assert set(log) == {'loss', 'loss_max', 'loss_rand0', 'loss_rand1',
                        'loss_min'}
    for n, p in model.named_parameters():
        g = ref[n] if ref[n] is not None else torch.zeros_like(p)
        assert torch.allclose(before[n] - p.detach(), g, atol=2e-6), n
    val = batches(1, size=16, seed=2)
    model.attach_search_val(val)
    model.attach_calib(batches(1, seed=3))
    arch = model.sampler.sample()
    assert model.val_top1(arch) == pytest.approx(inherited_accuracy(
        model, arch, [_batch(model, b) for b in val],
        [_batch(model, b) for b in batches(1, seed=3)]))
    # export: AttentiveNet config + sliced head, weights load strictly
    summary = export_arch(
        model, arch, tmp_path, name='best',
        cls_base='embedded/cream-14m_fmnist.py',
        det_base='embedded/retinanet_alphanet-a0_fpn_trees.py')
    assert summary['arch'] == model.sampler.key(arch)
    assert summary['flops'] == model.sampler.cost(arch)
    cls = Config.fromfile(str(tmp_path / 'best_cls.py'))
    assert cls.model.backbone.type == 'AttentiveNet'
    clf = MODELS.build(cls.model)
    state = torch.load(tmp_path / 'best_inherited.pth', weights_only=True)
    clf.load_state_dict(state['state_dict'], strict=True)
    x = torch.randn(2, 3, arch.resolution, arch.resolution)
    model.eval(), clf.eval()
    with torch.no_grad():
        assert torch.allclose(clf(x), model(x, arch=arch), atol=1e-5)
    det = Config.fromfile(str(tmp_path / 'best_retinanet.py'))
    from mmdet.registry import MODELS as DET
    detector = DET.build(det.model)
    feats = detector.extract_feat(torch.randn(1, 3, 64, 64))
    assert len(feats) == 5
