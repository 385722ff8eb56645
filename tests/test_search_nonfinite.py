"""Non-finite losses in the three search algorithms: such a step updates
nothing (weights, BN statistics, board, meta / simplex network, optimiser
state), ``nonfinite_patience`` of them in a row stop the run with a message
naming the iteration and the likely cause, a nan learning rate is refused,
and neither checkpoints nor exports take non-finite weights."""
import os

import pytest
import torch

from conftest import ROOT

import test_kshot as ks
import test_sandwich as sw
import test_search_cream as cr
from cream_mm.search.export import export_arch
from cream_mm.search.hooks import CreamSearchHook
from cream_mm.search.precision import NonFiniteLossError
from cream_mm.search.runtime import search_state_digest

torch.set_num_threads(1)


def poison(model):
    """Every logit of the head nan (the loss of every step non-finite)."""
    return model.head.register_forward_hook(
        lambda m, i, out: out * float('nan'))


def _cream():
    model = cr.make_model(warmup=dict(iters=0))
    model.attach_search_val(cr.batches(2, seed=5))
    return model, cr.make_optim(model), cr.batches(3, seed=3)


def _sandwich():
    model = sw.make_model()
    return model, sw.make_optim(model, momentum=0.9), sw.batches(3)


def _kshot():
    model = ks.make_model(warmup=dict(iters=0))
    return model, ks.make_optim(model), ks.batches(3)


def _state(model, optim):
    digest = search_state_digest(model, optim)
    for volatile in ('sampler', 'counters'):  # draws and iter move on
        digest.pop(volatile)
    return digest


@pytest.mark.parametrize('build', [_cream, _sandwich, _kshot],
                         ids=['cream', 'sandwich', 'kshot'])
def test_nonfinite_step_updates_nothing(build):
    model, optim, data = build()
    model.train_step(data[0], optim)  # optimiser state (momentum) exists
    before = _state(model, optim)
    handle = poison(model)
    log = model.train_step(data[1], optim)
    handle.remove()
    assert log['skipped'] == 1. and not torch.isfinite(log['loss'])
    assert _state(model, optim) == before
    assert all(p.grad is None or not p.grad.abs().sum()
               for p in model.parameters())
    log = model.train_step(data[2], optim)  # and training goes on
    assert 'skipped' not in log and _state(model, optim) != before


def test_patience_stops_with_iteration_and_cause():
    model, optim, data = _sandwich()
    model.nonfinite.patience = 2
    model.train_step(data[0], optim)
    poison(model)
    model.train_step(data[1], optim)
    with pytest.raises(NonFiniteLossError) as err:
        model.train_step(data[2], optim)
    msg = str(err.value)
    assert 'iteration 3' in msg and '2 iterations in a row' in msg
    assert 'learning rate (0.05) is likely too high' in msg


def test_nan_learning_rate_refused_before_the_step():
    model, optim, data = _kshot()
    optim['supernet'].optimizer.param_groups[0]['lr'] = float('nan')
    with pytest.raises(NonFiniteLossError,
                       match='optim_wrapper.supernet: learning rate nan'):
        model.train_step(data[0], optim)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_export_refuses_nonfinite_weights(tmp_path):
    model = cr.make_model()
    with torch.no_grad():
        model.head.classifier.weight[0, 0] = float('inf')
    with pytest.raises(ValueError, match='head.classifier.weight'):
        export_arch(model, model.largest, tmp_path / 'out',
                    cls_base='embedded/cream-14m_fmnist.py',
                    det_base='embedded/retinanet_cream-s_fpn_trees.py')
    assert not os.listdir(tmp_path / 'out')


def test_checkpoint_with_nonfinite_weights_not_written():
    class Runner:
        iter, model = 6, torch.nn.Module()
    hook = CreamSearchHook()
    good = dict(meta=dict(iter=7), state_dict={
        'backbone.w': torch.ones(2), 'board.scores': torch.tensor(
            [float('-inf'), 3.])})  # unscored board paths: -inf on purpose
    hook.before_save_checkpoint(Runner(), good)
    good['state_dict']['head.b'] = torch.tensor([float('nan')])
    with pytest.raises(ValueError, match='iteration 7 .not written.*head.b'):
        hook.before_save_checkpoint(Runner(), good)


@pytest.mark.slow
def test_diverging_search_stops_and_keeps_good_checkpoints(tmp_path):
    """The issue's reproduction: lr=1e9 through tools/train.py."""
    from tools.train import main
    with pytest.raises(NonFiniteLossError, match='likely too high'):
        main([f'{ROOT}/configs/search/tiny_cream_embedded.py', '--work-dir',
              str(tmp_path), '--cfg-options',
              'optim_wrapper.supernet.optimizer.lr=1e9',
              'train_cfg.max_iters=40', 'model.warmup.iters=2',
              'model.nonfinite_patience=5',
              'default_hooks.checkpoint.interval=1'])
    ckpts = sorted(p for p in os.listdir(tmp_path) if p.endswith('.pth'))
    assert ckpts and len(ckpts) < 10
    for name in ckpts:
        state = torch.load(tmp_path / name, map_location='cpu',
                           weights_only=False)['state_dict']
        assert all(torch.isfinite(v).all() for k, v in state.items()
                   if v.is_floating_point() and not k.startswith('board.'))
