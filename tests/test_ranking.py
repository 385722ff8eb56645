"""tools/rank_correlation.py and cream_mm.evaluation.ranking on a tiny
budget: JSON + PNG written, tau in [-1, 1] and equal to Kendall's tau of the
recorded numbers, paths in range and reproducible, stand-alone cache reused.
The real measurement (trained tiny SPOS and Cream supernets) is the slow
test at the end."""
import json
import math
import os
import subprocess
import sys

import pytest
import torch
from conftest import PYTHON, ROOT
from scipy.stats import kendalltau

from cream_mm.evaluation.ranking import (inherited_accuracy,
                                         load_search_model, sample_paths)

CONFIG = os.path.join(ROOT, 'configs/search/tiny_cream_embedded.py')
SPOS = os.path.join(ROOT, 'configs/search/tiny_spos_embedded.py')
SANDWICH = os.path.join(ROOT, 'configs/search/tiny_sandwich_embedded.py')
TINY = dict(train_dataloader=dict(batch_size=8))


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """An (untrained) tiny supernet saved like a runner checkpoint."""
    torch.manual_seed(0)
    _, model = load_search_model(CONFIG)
    path = tmp_path_factory.mktemp('rank') / 'supernet.pth'
    torch.save(dict(meta=dict(iter=0), state_dict=model.state_dict()), path)
    return str(path)


def test_tool_writes_json_png_and_tau(checkpoint, tmp_path):
    sys.path.insert(0, ROOT)
    from tools.rank_correlation import main
    cache = tmp_path / 'cache.json'
    args = [CONFIG, checkpoint, '--num-paths', '4', '--train-iters', '2',
            '--val-images', '48', '--calib-batches', '1', '--work-dir',
            str(tmp_path / 'out'), '--standalone-cache', str(cache),
            '--cfg-options', 'train_dataloader.batch_size=8']
    res = main(args)
    data = json.loads((tmp_path / 'out' / 'ranking.json').read_text())
    assert (tmp_path / 'out' / 'ranking.png').read_bytes()[:4] == b'\x89PNG'
    rows = data['rows']
    assert len(rows) == 4 and len({r['arch'] for r in rows}) == 4
    lo, hi = data['flops_range']
    assert all(lo <= r['flops'] <= hi for r in rows)
    tau = kendalltau([r['supernet_top1'] for r in rows],
                     [r['standalone_top1'] for r in rows]).statistic
    assert data['kendall_tau'] == pytest.approx(tau, nan_ok=True)
    assert math.isnan(tau) or -1 <= data['kendall_tau'] <= 1
    assert res['kendall_tau'] == data['kendall_tau']
    assert not any(r['standalone_cached'] for r in rows)
    # a second supernet (SPOS config: same space and range) reuses the
    # stand-alone results of the same paths
    again = main([SPOS] + args[1:] + ['--name', 'spos'])
    assert [r['arch'] for r in again['rows']] == [r['arch'] for r in rows]
    assert all(r['standalone_cached'] for r in again['rows'])
    assert [r['standalone_top1'] for r in again['rows']] == \
        [r['standalone_top1'] for r in rows]
    assert again['matching'] == 'none'
    # a sandwich-rule supernet of the same space: the same paths, the same
    # cached stand-alone results, its own inherited accuracies
    torch.manual_seed(0)
    _, sandwich = load_search_model(SANDWICH)
    ckpt = tmp_path / 'sandwich.pth'
    torch.save(dict(meta=dict(iter=0), state_dict=sandwich.state_dict()),
               ckpt)
    third = main([SANDWICH, str(ckpt)] + args[2:] + ['--name', 'sandwich'])
    assert [r['arch'] for r in third['rows']] == [r['arch'] for r in rows]
    assert all(r['standalone_cached'] for r in third['rows'])
    assert third['algorithm'] == 'SandwichSearch'
    assert third['matching'] is None
    assert [r['flops'] for r in third['rows']] == [r['flops'] for r in rows]


def test_paths_seeded_and_range_override(checkpoint):
    _, model = load_search_model(CONFIG, checkpoint)
    a = sample_paths(model, 5, seed=3)
    assert a == sample_paths(model, 5, seed=3) != sample_paths(model, 5, 4)
    narrow = sample_paths(model, 3, seed=0, flops_range=(4.5e6, 5e6))
    assert all(4.5e6 <= model.table.arch_cost(p) <= 5e6 for p in narrow)
    # the model's own sampler is untouched
    state = model.sampler.generator.get_state()
    sample_paths(model, 2, seed=1)
    assert torch.equal(state, model.sampler.generator.get_state())


def test_inherited_accuracy_with_batch_stats_equals_search_scoring(
        checkpoint):
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope('mmpretrain')
    cfg, model = load_search_model(CONFIG, checkpoint)
    loader = Runner.build_dataloader(dict(
        cfg.search_val_dataloader, batch_size=16,
        dataset=dict(cfg.search_val_dataloader.dataset, indices=32)))
    batches = list(loader)
    model.attach_search_val(batches)
    arch = sample_paths(model, 1, seed=0)[0]
    from cream_mm.evaluation.ranking import _batch
    val = [_batch(model, b) for b in batches]
    assert inherited_accuracy(model, arch, val, bn='batch') == \
        pytest.approx(model.val_top1(arch))


@pytest.mark.measurement
def test_tau_of_trained_tiny_spos_and_cream(tmp_path):
    """Train both tiny supernets (600 iterations each), rank the same 8
    paths; see docs/alphanet_kshot.md 'Ranking quality' for the recorded numbers."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    taus = {}
    for name, cfg in (('cream', CONFIG), ('spos', SPOS)):
        work = tmp_path / name
        subprocess.run([PYTHON, 'tools/train.py', cfg, '--work-dir',
                        str(work)], cwd=ROOT, env=env, check=True,
                       timeout=3600)
        subprocess.run([PYTHON, 'tools/rank_correlation.py', cfg,
                        str(work / 'iter_600.pth'), '--num-paths', '8',
                        '--train-iters', '300', '--work-dir', str(work),
                        '--standalone-cache', str(tmp_path / 'cache.json')],
                       cwd=ROOT, env=env, check=True, timeout=3600)
        taus[name] = json.loads((work / 'ranking.json').read_text())[
            'kendall_tau']
    assert all(-1 <= t <= 1 for t in taus.values())
