"""Cream on the detection objective (DetCreamSearch): Eq. 5's per-anchor KD
by hand, Eq. 4's bounded matching input and its self-match zero, board
scores from the metric (a stand-in and a real CocoMetric), Eq. 6 through
backbone, neck and head, the detectors it wraps, export to a loadable
detector config with the fixed child's backbone keys, and its errors."""
import copy
import math

import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

import _det_toys as T
from cream_mm.arch import format_arch
from cream_mm.models import CreamNet
from cream_mm.models.det_distill import (box_distribution_kd, dense_cls_kd,
                                         pooled_scores)
from cream_mm.search import export_arch

torch.set_num_threads(1)


# ------------------------------------------------------------ Eq. 5: KD
def test_sigmoid_kd_by_hand():
    """One anchor, two classes: sum_c BCE(sigmoid(s_c), sigmoid(t_c))."""
    s = torch.tensor([0., math.log(3)]).reshape(1, 2, 1, 1)
    t = torch.tensor([math.log(3), 0.]).reshape(1, 2, 1, 1)
    # targets 0.75 and 0.5; student probabilities 0.5 and 0.75
    expected = (-(0.75 * math.log(.5) + .25 * math.log(.5))
                - (.5 * math.log(.75) + .5 * math.log(.25)))
    kd = dense_cls_kd([s], [t], 2, sigmoid=True)
    assert kd.item() == pytest.approx(expected, abs=1e-6)
    # T=2: logits halved, times T^2
    s2, t2 = s * 2, t * 2
    assert dense_cls_kd([s2], [t2], 2, True, temperature=2.).item() == \
        pytest.approx(4 * expected, abs=1e-5)


def test_softmax_kd_by_hand_over_levels_and_anchors():
    """Softmax head (C + 1 = 3 outputs), two levels, anchors averaged:
    teacher (1/4, 1/4, 1/2) under a uniform student is ln 3 per anchor."""
    t1 = torch.tensor([0., 0., math.log(2)]).reshape(1, 3, 1, 1)
    lvl1 = (torch.zeros(1, 3, 1, 1), t1)
    # level 2: 2x2 positions, 2 anchors each (6 channels), teacher = student
    s2 = torch.randn(1, 6, 2, 2)
    kd = dense_cls_kd([lvl1[0], s2], [lvl1[1], s2.clone()], 3,
                      sigmoid=False)
    flat = s2.permute(0, 2, 3, 1).reshape(-1, 3)
    self_ce = -(flat.softmax(-1) * flat.log_softmax(-1)).sum(-1)
    expected = (math.log(3) + self_ce.sum().item()) / 9
    assert kd.item() == pytest.approx(expected, abs=1e-6)


def test_kd_gradient_vanishes_at_the_teacher():
    s = torch.randn(2, 6, 3, 3, requires_grad=True)
    for sigmoid in (True, False):
        kd = dense_cls_kd([s], [s.detach().clone()], 3, sigmoid)
        g, = torch.autograd.grad(kd, s)
        assert g.abs().max() < 1e-7


def test_box_distribution_kd_by_hand():
    """reg_max=1: two bins per side; uniform student -> ln 2 per side."""
    s = torch.zeros(1, 8, 2, 2)
    t = torch.randn(1, 8, 2, 2)
    assert box_distribution_kd([s], [t], reg_max=1).item() == \
        pytest.approx(math.log(2), abs=1e-6)


# ------------------------------------------------ Eq. 4: matching input
def test_pooled_scores_bounded_shape_and_background_dropped():
    big = [torch.randn(2, 2 * 4, 5, 5) * 50, torch.randn(2, 2 * 4, 3, 3) * 50]
    z = pooled_scores(big, 4, 3, sigmoid=False, pool='max+mean')
    assert z.shape == (2, 6) and z.min() >= 0 and z.max() <= 1
    z = pooled_scores(big, 4, 4, sigmoid=True, pool='max')
    flat = torch.cat([m.permute(0, 2, 3, 1).reshape(2, -1, 4) for m in big],
                     1)
    assert torch.equal(z, flat.sigmoid().amax(1))
    with pytest.raises(ValueError, match='pool'):
        pooled_scores(big, 4, 4, True, pool='sum')


def test_self_match_is_zero_and_input_bounded():
    torch.manual_seed(0)
    model, _ = T.build(match=dict(pool='max+mean'))
    data = model.data_preprocessor(T.batch([0, 1, 2]), True)
    arch = model.board_arch(0)
    other = model.board_arch(1)
    za, zb, zo = model.match_outputs(data['inputs'][:2], [arch, arch, other])
    assert za.shape == (2, model.match_dim) == (2, 2 * len(T.CLASSES))
    assert torch.equal(za - zb, torch.zeros_like(za))
    assert (za - zo).abs().max() > 0
    assert za.min() >= 0 and za.max() <= 1


# -------------------------------------------- Alg. 1 on a detector
def test_retinanet_search_steps_distil_match_and_meta_update():
    torch.manual_seed(0)
    model, optim = T.build(warmup=dict(iters=1))
    model.attach_search_val([T.batch([10, 11])])
    meta0 = [p.clone() for p in model.meta_net.parameters()]
    logs = [model.train_step(T.batch([i, i + 1]), optim) for i in range(3)]
    assert 'kd' not in logs[0] and all('kd' in log for log in logs[1:])
    assert all(math.isfinite(float(log['loss'])) for log in logs)
    assert model.last_step['meta_update'] and int(model.meta_steps) == 2
    assert any(not torch.equal(a, b) for a, b in
               zip(meta0, model.meta_net.parameters()))
    # board scored from the metric (FakeDetMetric, in %): the last step's
    # path was scored after its update, with the weights there are now
    arch, flops, score, it = model.history[-1]
    assert it == 2 and arch == model.last_step['path']
    assert score == pytest.approx(model.val_map(model.parse_arch(arch)))
    assert all(0 <= s <= 100 for s in model.board.scores)


def test_eq6_weights_are_the_paths_backbone_neck_and_head():
    model, _ = T.build()
    arch = model.board_arch(0)
    names = model.path_parameters(arch)
    assert any(n.startswith('detector.neck.') for n in names)
    assert any(n.startswith('detector.bbox_head.') for n in names)
    backbone = {n for n in names if n.startswith('detector.backbone.')}
    assert backbone == {'detector.backbone.' + n for n in
                        model.backbone.path_parameters(arch)}
    other = model.board_arch(1)
    assert backbone != {n for n in model.path_parameters(other)
                        if n.startswith('detector.backbone.')}


def test_board_rows_report_the_whole_detectors_macs():
    model, _ = T.build()
    rows = model.board_table()
    assert rows and all(r['detector_gmacs'] > 0 for r in rows)
    # the whole detector (neck and head at 64 px) costs more than the
    # backbone, and a costlier backbone gives a costlier detector
    for r in rows:
        assert r['detector_gmacs'] * 1e3 > r['flops']
    by_flops = sorted(rows, key=lambda r: r['flops'])
    if by_flops[0]['flops'] < by_flops[-1]['flops']:
        assert by_flops[0]['detector_gmacs'] < by_flops[-1]['detector_gmacs']


@pytest.mark.parametrize('make', [T.faster_rcnn, T.fcos, T.gfl],
                         ids=['faster_rcnn', 'fcos', 'gfl'])
def test_other_detectors_wrap(make):
    torch.manual_seed(0)
    box = make is T.gfl
    model, optim = T.build(make(), warmup=dict(iters=1),
                           distill=dict(box=box))
    model.attach_search_val([T.batch([10, 11])])
    if make is T.faster_rcnn:
        assert model.kd_head is model.detector.rpn_head
        assert model.match_dim == 1  # the RPN's objectness
    logs = [model.train_step(T.batch([i, i + 1]), optim) for i in range(2)]
    assert 'kd' in logs[1] and math.isfinite(float(logs[1]['kd']))
    assert model.last_step['meta_update']


def test_map_from_a_real_coco_metric(tmp_path):
    """CocoMetric through the search: predictions equal to the ground truth
    score 100 % mAP, shifted ones less."""
    ids = [10, 11]
    model, _ = T.build(evaluator=dict(
        type='CocoMetric', metric='bbox',
        ann_file=T.coco_file(tmp_path / 'val.json', ids)),
        score_key='coco/bbox_mAP')
    model.attach_search_val([T.batch(ids)])
    model.attach_search_meta(dict(classes=T.CLASSES))
    real = model.val_map(model.board_arch(0))
    assert 0 <= real <= 100

    def oracle(shift):
        def predict(inputs, samples):
            for s in samples:
                gt = s.gt_instances
                s.pred_instances = InstanceData(
                    bboxes=gt.bboxes + shift, labels=gt.labels,
                    scores=torch.ones(len(gt.labels)))
            return samples
        return predict
    model.detector.predict = oracle(0.)
    assert model.val_map(model.board_arch(0)) == pytest.approx(100.)
    model.detector.predict = oracle(6.)
    assert model.val_map(model.board_arch(0)) < 90.


# ------------------------------------------------------------- export
def test_export_loadable_detector_with_the_childs_backbone_keys(tmp_path):
    torch.manual_seed(0)
    model, optim = T.build(warmup=dict(iters=1))
    model.attach_search_val([T.batch([10, 11])])
    for i in range(2):
        model.train_step(T.batch([i, i + 1]), optim)
    arch = model.board_arch(model.board.best())
    base = tmp_path / 'base.py'
    base.write_text("default_scope = 'mmdet'\n")
    summary = export_arch(model, arch, tmp_path / 'out', det_base=str(base))
    cfg = Config.fromfile(summary['detector_config'])
    assert cfg.model.backbone.type == 'CreamNet'
    assert cfg.model.backbone.arch == format_arch(arch)
    assert cfg.model.data_preprocessor.type == 'DetDataPreprocessor'
    with DefaultScope.overwrite_default_scope('mmdet'):  # as tools/train.py
        det = DET_MODELS.build(cfg.model)
    state = torch.load(summary['detector_inherited'],
                       weights_only=True)['state_dict']
    det.load_state_dict(state, strict=True)
    child = CreamNet(arch, out_indices=(2, 4, 6))
    assert {k[len('backbone.'):] for k in state if
            k.startswith('backbone.')} == set(child.state_dict())
    # the same network: eval outputs of the export equal the search's path
    model.eval()
    det.eval()
    x = torch.randn(1, 3, T.SIZE, T.SIZE)
    model.backbone.set_path(arch)
    with torch.no_grad():
        ours = model.detector._forward(x)
        theirs = det._forward(x)
    for a, b in zip(ours[0], theirs[0]):
        torch.testing.assert_close(a, b)
    assert summary['detector_macs'] > 0
    # the backbone files of the classification export are there too
    assert (tmp_path / 'out' / 'searched.arch').read_text().strip() == \
        format_arch(arch)


# ------------------------------------------------------------- errors
@pytest.mark.parametrize('kwargs, field', [
    (dict(scoring=dict(early_stop=True)), 'early_stop'),
    (dict(scoring=dict(screen='entry')), 'screen'),
    (dict(scoring=dict(on='train_batch')), 'scoring.on'),
    (dict(distill=dict(box=True)), 'distill.box'),
    (dict(match=dict(pool='sum')), 'match.pool'),
    (dict(head=dict(type='CreamClsHead')), 'head'),
    (dict(cost=dict(type='latency', table='t.json', range=(0, 1))),
     'cost.type'),
])
def test_bad_options_are_refused(kwargs, field):
    with pytest.raises(ValueError, match=field):
        T.build(**kwargs)


def test_a_backbone_that_is_no_supernet_is_refused():
    det = T.retinanet()
    det['backbone'] = dict(type='CreamNet', arch='cream-14m',
                           out_indices=(2, 4, 6))
    with pytest.raises(TypeError, match='not a supernet'):
        T.build(det, supernet=None)


# ------------------------------------------------------------- resume
def _steps(model, optim, ids):
    model.attach_search_val([T.batch([10, 11])])
    for i in ids:
        model.train_step(T.batch([i, i + 1]), optim)


def test_state_dict_round_trip_continues_bit_exact():
    """Steps 1-3 in one go equal steps 1-2, state_dict / optimiser state
    into a differently initialised model, step 3 (the in-process core of
    the kill-and-resume test of test_det_search_dist.py)."""
    torch.manual_seed(0)
    ref, ref_optim = T.build(warmup=dict(iters=1))
    _steps(ref, ref_optim, range(3))
    torch.manual_seed(0)
    first, first_optim = T.build(warmup=dict(iters=1))
    _steps(first, first_optim, range(2))
    state = copy.deepcopy(first.state_dict())
    optim_state = copy.deepcopy(first_optim.state_dict())
    torch.manual_seed(123)
    second, second_optim = T.build(warmup=dict(iters=1))
    second.load_state_dict(state, strict=True)
    second_optim.load_state_dict(optim_state)
    _steps(second, second_optim, range(2, 3))
    assert int(ref.meta_steps) == 2 and ref.board_table() == \
        second.board_table()
    a, b = ref.state_dict(), second.state_dict()
    assert a.keys() == b.keys()
    assert not any(k.startswith(('backbone.', 'head.')) for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_starts_from_a_classification_supernet_checkpoint(tmp_path):
    """Step 1 -> 2 of the chain: the detection search's hypernetwork loads
    the classification search's checkpoint strictly (``backbone.`` keys)."""
    from cream_mm.search import CreamSearch
    torch.manual_seed(1)
    cls = CreamSearch(
        supernet=dict(type='CreamSupernet', space=dict(
            name='mbconv', max_depths=1, input_size=32)),
        head=dict(type='CreamClsHead', num_classes=4, head_channels=16),
        board=dict(num_paths=2), meta=dict(hidden=8))
    ckpt = tmp_path / 'supernet.pth'
    torch.save(dict(state_dict=cls.state_dict()), ckpt)
    supernet = dict(T.SUPERNET, init_cfg=dict(
        type='Pretrained', checkpoint=str(ckpt), prefix='backbone.'))
    torch.manual_seed(2)
    model, _ = T.build(supernet=supernet)
    model.init_weights()
    theirs = cls.backbone.state_dict()
    ours = model.backbone.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    # a checkpoint that does not fill the supernet is refused
    torch.save(dict(state_dict={k: v for k, v in cls.state_dict().items()
                                if 'blocks.6' not in k}), ckpt)
    model, _ = T.build(supernet=supernet)
    with pytest.raises(Exception, match='missing|Missing'):
        model.init_weights()


def _build_config(name):
    cfg = Config.fromfile(f'{T.ROOT}/configs/det_search/{name}')
    cfg.model.supernet.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        return cfg, DET_MODELS.build(cfg.model)


def test_embedded_config_is_a_delta_of_the_retinanet_config():
    cfg, model = _build_config('tiny_det_cream_composite.py')
    base = Config.fromfile(
        f'{T.ROOT}/configs/embedded/retinanet_cream-s_fpn_composite.py')
    assert cfg.model.detector.bbox_head == base.model.bbox_head
    assert model.detector.neck.in_channels == [40, 96, 320]
    lo, hi = cfg.model.flops_range
    assert all(lo <= f <= hi for f in model.board.flops)
    assert cfg.search_val_dataloader.dataset.offset == \
        cfg.train_dataloader.dataset.indices


@pytest.mark.slow
def test_paper_config_builds():
    cfg, model = _build_config('retinanet_r50_to_cream_search_coco.py')
    assert type(model.detector).__name__ == 'RetinaNet'
    assert model.detector.neck.in_channels == [40, 96, 320]
    assert model.detector.neck.start_level == 0
    assert len(model.board) == 10
