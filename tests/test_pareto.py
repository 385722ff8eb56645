"""AlphaNet's Pareto-front evolution (ParetoSearch, final 'pareto') with a
synthetic val_top1: each bucket holds the best of its candidates, seeded
runs repeat, offspring stay in range, the front is saved and plotted."""
import json
import zlib

import pytest

from cream_mm.models.supernet import SearchSpace
from cream_mm.search import ParetoSearch, run_final, save_front
from cream_mm.search.flops_table import FlopsTable
from cream_mm.search.sampler import PathSampler

SPACE = SearchSpace('mbconv', max_depths=2, input_size=32)
TABLE = FlopsTable(SPACE, 'flops', 10)


class Synthetic:
    """Protocol-only model: a sampler and a deterministic fake top-1
    (a hash of the arch key), counting evaluations."""

    def __init__(self, seed=0, flops_range=(4e6, 6e6)):
        self.sampler = PathSampler(SPACE, TABLE, flops_range, seed=seed)
        self.calls = []

    def val_top1(self, arch):
        key = self.sampler.key(arch)
        self.calls.append(key)
        return (zlib.crc32(key.encode()) % 10000) / 100.


CFG = dict(population=12, generations=4, mutations=6, crossovers=6,
           step=0.25e6)


def test_front_holds_the_best_of_each_bucket():
    model = Synthetic()
    search = ParetoSearch(model, **CFG)
    rows = search.run()
    assert [r['top1'] for r in rows] == sorted((r['top1'] for r in rows),
                                               reverse=True)
    assert len(model.calls) == len(set(model.calls)) == len(rows)
    by_bucket = {}
    for r in rows:
        assert r['bucket'] == round(r['flops'] / 0.25e6)
        by_bucket.setdefault(r['bucket'], []).append(r)
    front = search.front_rows()
    assert [r['bucket'] for r in front] == sorted(by_bucket)
    for r in front:
        assert r['top1'] == max(x['top1'] for x in by_bucket[r['bucket']])
    assert sum(r['front'] for r in rows) == len(front) == len(by_bucket)
    assert len(rows) > CFG['population']  # offspring were evaluated


def test_offspring_in_range_and_population_has_smallest():
    lo, hi = 4e6, 6e6
    model = Synthetic(flops_range=(2e6, hi))
    search = ParetoSearch(model, **CFG)
    rows = search.run()
    smallest = model.sampler.extreme(False)
    assert 2e6 <= model.sampler.cost(smallest)
    assert model.calls[0] == model.sampler.key(smallest)
    assert len(search.offspring) == CFG['generations'] * (
        CFG['mutations'] + CFG['crossovers'])
    for key in search.offspring:
        assert 2e6 <= model.sampler.cost(model.sampler.parse(key)) <= hi
    assert all(2e6 <= r['flops'] <= hi for r in rows)
    # a smallest subnet outside the range is left out
    model = Synthetic(flops_range=(lo, hi))
    assert model.sampler.cost(model.sampler.extreme(False)) < lo
    ParetoSearch(model, **CFG).run()
    assert model.sampler.key(model.sampler.extreme(False)) \
        not in model.calls


def test_seeded_reproducible_and_registered(tmp_path):
    a = run_final('pareto', Synthetic(seed=3), **CFG)
    b = run_final('pareto', Synthetic(seed=3), **CFG)
    c = run_final('pareto', Synthetic(seed=4), **CFG)
    assert a == b and a != c
    data = save_front(a, tmp_path)
    saved = json.loads((tmp_path / 'pareto.json').read_text())
    assert saved == data and saved['evaluated'] == a
    assert [r['flops'] for r in saved['front']] == sorted(
        r['flops'] for r in saved['front'])
    assert (tmp_path / 'pareto.png').read_bytes()[:4] == b'\x89PNG'


def test_bad_arguments():
    with pytest.raises(ValueError, match='step=0'):
        ParetoSearch(Synthetic(), step=0)
    with pytest.raises(ValueError, match='mutation_prob=0'):
        ParetoSearch(Synthetic(), mutation_prob=0)
    search = ParetoSearch(Synthetic(), max_tries=3)
    search.in_range = lambda arch: False
    with pytest.raises(RuntimeError, match='no child inside'):
        search._child(search.sampler.sample)


def test_flops_range_override_is_seeded_from_the_sampler():
    a = Synthetic(seed=5, flops_range=(None, None))
    rows = ParetoSearch(a, flops_range=(4e6, 5e6), **CFG).run()
    assert all(4e6 <= r['flops'] <= 5e6 for r in rows)
    assert a.sampler.flops_range == (0., float('inf'))  # model's untouched
    b = Synthetic(seed=5, flops_range=(None, None))
    assert ParetoSearch(b, flops_range=(4e6, 5e6), **CFG).run() == rows
