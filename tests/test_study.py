"""tools/reproduce_table1.py at toy scale (configs/study/table1_toy.py):
the table's structure, tau computed on the cached runs, a second
invocation that trains nothing, a partial / killed cache that resumes with
exactly the missing units; the statistics and the unit cache on their own;
the telemetry probe leaves the search untouched."""
import json
import os

import numpy as np
import pytest
import torch
from conftest import ROOT
from scipy.stats import kendalltau

from cream_mm.evaluation.study_cache import UnitCache
from cream_mm.evaluation.study_report import (bootstrap_tau,
                                             paired_tau_difference,
                                             t_interval, welch_difference)

TOY = os.path.join(ROOT, 'configs/study/table1_toy.py')


def _run(cache, out, *extra):
    from tools.reproduce_table1 import main
    return main([TOY, '--cache', str(cache), '--out', str(out),
                 '--rows', '5', *extra])


def _mtimes(root):
    return {p: os.stat(p).st_mtime_ns for p in sorted(
        str(q) for q in root.rglob('*.json') if 'runs' not in q.parts)}


def test_toy_study_table_cache_and_resume(tmp_path):
    cache, out = tmp_path / 'cache', tmp_path / 'report'
    first = _run(cache, out)
    data = json.loads((out / 'study.json').read_text())
    for png in data['plots']:
        assert open(png, 'rb').read(4) == b'\x89PNG'
    md = (out / 'table1.md').read_text()
    assert md.startswith('| # | Row |') and '| 5 | meta teacher (Cream) |' \
        in md and 'noise ceiling' in md
    assert len(data['paths']) == 4 and data['complete_paths'] == 4
    (row, ) = data['rows']
    (seed, ) = row['seeds']
    # tau is computed on the cached numbers: inherited of the supernet unit
    # against the mean of the two cached stand-alone runs
    truth = [np.mean(v) for v in data['standalone']['top1_rank']]
    want = kendalltau(seed['inherited'], truth).statistic
    assert seed['kendall']['tau'] == pytest.approx(want, nan_ok=True)
    a, b = zip(*data['standalone']['top1_rank'])
    assert data['noise_ceiling']['tau'] == pytest.approx(
        kendalltau(a, b).statistic, nan_ok=True)
    assert row['hypernet_top1']['mean'] == pytest.approx(
        np.mean(seed['inherited']))
    assert len(seed['retrain_top1']) == 1 and seed['random']['archs']
    assert row['paper'] == dict(tau=0.37, hyper=67.0, top1=79.2, mflops=481)
    # the toy study has no SPOS row: only the search-minus-random gap
    (diff, ) = data['differences']
    assert diff['against'] is None and 'delta_tau' not in diff
    assert diff['search_minus_random']['mean'] == pytest.approx(
        seed['retrain_mean'] - seed['random']['mean'])
    assert 'retrained minus random' in md
    tel = seed['telemetry']
    assert tel['steps'] == 6 and len(tel['board_vs_random']) == 3
    assert tel['distill_steps'] > 0 and tel['rho']['mean'] is not None
    assert first['stages']['standalone'] == dict(
        first['stages']['standalone'], units=8, ran=8)
    # second invocation: every unit from the cache, no file rewritten
    before = _mtimes(cache)
    again = _run(cache, out)
    assert all(s['ran'] == 0 for s in again['stages'].values())
    assert _mtimes(cache) == before
    assert json.loads((out / 'study.json').read_text())['rows'][0][
        'kendall'] == row['kendall']
    # a killed study: one stand-alone unit missing, a half-written file
    # left by the kill, the supernet's unit file lost after its last
    # checkpoint -> exactly those are redone, the run resumes
    sa = sorted((cache / 'standalone').glob('*.json'))
    sa[0].unlink()
    (sa[0].parent / f'.{sa[0].name}.123.tmp').write_text('{"key": ')
    (sup, ) = (cache / 'supernet').glob('*.json')
    sup.unlink()
    third = _run(cache, out, '--stages', 'standalone', 'supernet')
    assert third['stages']['standalone']['ran'] == 1
    assert third['stages']['supernet']['ran'] == 1
    res = json.loads(sup.read_text())['result']
    assert res['resumed'] and res['final_arch'] == seed['final_arch']


def test_unit_cache_atomic_and_keyed(tmp_path):
    cache = UnitCache(tmp_path)
    key = dict(arch='a', seed=1)
    assert cache.get('k', key) is None
    cache.put('k', key, dict(top1=1.5))
    assert cache.get('k', dict(seed=1, arch='a')) == dict(top1=1.5)
    assert cache.get('k', dict(arch='a', seed=2)) is None
    cache.path('k', key).write_text('{"key": {"arch"')  # cut by a kill
    assert cache.get('k', key) is None
    assert not list(tmp_path.rglob('*.tmp'))


def test_bootstrap_tau_and_t_interval():
    y = np.arange(30.)
    res = bootstrap_tau([y + np.random.default_rng(0).normal(0, 3, 30)], y,
                        500)
    assert 0 < res['ci95'][0] < res['tau'] < res['ci95'][1] <= 1
    perfect = bootstrap_tau([y, y], y, 100)
    assert perfect['tau'] == 1 and perfect['ci95'] == pytest.approx([1, 1])
    t = t_interval([1., 2., 3.])
    assert t['mean'] == 2 and t['ci95'] == pytest.approx(
        [2 - 4.303 / 3 ** .5, 2 + 4.303 / 3 ** .5])
    assert t_interval([5.])['ci95'] is None


def test_paired_tau_difference_and_welch():
    rng = np.random.default_rng(0)
    y = np.arange(30.)
    good = [y + rng.normal(0, 2, 30) for _ in range(3)]
    bad = [rng.permutation(y) for _ in range(3)]
    d = paired_tau_difference(good, bad, y, 500)
    assert d['diff'] == pytest.approx(
        bootstrap_tau(good, y, 1)['tau'] - bootstrap_tau(bad, y, 1)['tau'])
    assert 0 < d['ci95'][0] < d['diff'] < d['ci95'][1]
    assert d['share_le_0'] == 0
    same = paired_tau_difference(good, good, y, 100)
    assert same['diff'] == 0 and same['ci95'] == [0, 0]
    w = welch_difference([3., 4., 5.], [1., 2., 3.])
    # equal variances and sizes: df = 4, t = 2.776, se = sqrt(2/3)
    assert w['diff'] == 2 and w['df'] == pytest.approx(4)
    assert w['ci95'] == pytest.approx([2 - 2.776 * (2 / 3) ** .5,
                                       2 + 2.776 * (2 / 3) ** .5])
    assert welch_difference([1.], [2., 3.])['ci95'] is None


def test_telemetry_probe_touches_no_search_state():
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from cream_mm.evaluation.ranking import load_search_model
    from cream_mm.search.telemetry import SearchTelemetryHook
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    cfg, model = load_search_model(os.path.join(
        ROOT, 'configs/search/tiny_cream_embedded.py'))
    loader = Runner.build_dataloader(dict(
        cfg.search_val_dataloader, batch_size=8,
        dataset=dict(cfg.search_val_dataloader.dataset, indices=16)))
    model.attach_search_val(list(loader))
    hook = SearchTelemetryHook(probe_paths=2)

    class _R:
        pass
    runner = _R()
    runner.model = model
    hook.before_train(runner)
    gen = model.sampler.generator.get_state()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    arch = model.board_arch(0)
    row = hook.probe(model, 1, dict(path=str(model.board_table()[1]['arch']),
                                    teacher=str(model.board_table()[0][
                                        'arch'])))
    assert len(row['board_top1']) == len(model.board) and \
        len(row['random_top1']) == 2 and 0 <= row['agreement'] <= 100
    assert torch.equal(gen, model.sampler.generator.get_state())
    assert torch.equal(rng, torch.get_rng_state())
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert row['board_top1'][0] == pytest.approx(model.val_top1(arch))
