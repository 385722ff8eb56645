"""NSGA-II final search through pymoo: seeded reproducibility, the FLOPs
constraint, the optimum of a synthetic objective, the registry."""
import subprocess
import sys

import pytest
import torch

from cream_mm.models import CreamSupernet
from cream_mm.search import NSGA2Search, run_final
from cream_mm.search.samplers import build_sampler

torch.set_num_threads(1)
SPACE = dict(name='mbconv', max_depths=2, input_size=32)


class Synthetic:
    """``val_top1`` = 100 - l1 distance of the genome to a target path."""

    def __init__(self, flops_range, seed=0):
        self.sampler = build_sampler(CreamSupernet(space=SPACE), 10,
                                     flops_range, seed=seed)
        self.target = self.sampler.genome(self.sampler.reseeded(
            123).sample())
        self.calls = 0

    def val_top1(self, arch):
        self.calls += 1
        genes = self.sampler.genome(arch)
        return 100. - sum(abs(g - t) for g, t in zip(genes, self.target))


RANGE = (4e6, 6e6)


def test_seeded_reproducible_and_in_range():
    a = NSGA2Search(Synthetic(RANGE), population=12, generations=4,
                    parents=6, seed=3).run()
    model = Synthetic(RANGE)
    search = NSGA2Search(model, population=12, generations=4, parents=6,
                         seed=3)
    b = search.run()
    assert a == b and len(a) >= 12
    assert model.calls == len(b)  # each path evaluated once
    lo, hi = RANGE
    assert all(lo <= r['flops'] <= hi for r in b)
    assert [r['top1'] for r in b] == sorted((r['top1'] for r in b),
                                            reverse=True)
    # the non-dominated set: no row is better in both objectives
    assert search.pareto and all(r['front'] for r in search.pareto)
    for p in search.pareto:
        assert not any(r['top1'] > p['top1'] and r['flops'] < p['flops']
                       for r in b)
    c = NSGA2Search(Synthetic(RANGE), population=12, generations=4,
                    parents=6, seed=4).run()
    assert c != a


def test_finds_the_optimum_of_a_synthetic_objective():
    model = Synthetic(RANGE)
    lo, hi = RANGE
    assert lo <= model.sampler.cost(model.sampler.from_genome(
        model.target)) <= hi
    rows = NSGA2Search(model, population=50, generations=20, parents=20,
                       seed=0).run()
    assert rows[0]['top1'] == 100.
    assert rows[0]['arch'] == model.sampler.key(
        model.sampler.from_genome(model.target))


def test_registered_as_final_and_checks_arguments():
    rows = run_final('nsga2', Synthetic(RANGE), population=6,
                     generations=1, parents=3)
    assert rows and {'arch', 'flops', 'top1'} <= set(rows[0])
    with pytest.raises(ValueError, match='population'):
        NSGA2Search(Synthetic(RANGE), population=0)


def test_pymoo_import_downloads_and_compiles_nothing():
    code = ('import socket, subprocess, numpy\n'
            'def deny(*a, **k): raise RuntimeError("network/subprocess")\n'
            'socket.socket.connect = deny\n'
            'subprocess.Popen = deny\n'
            'from pymoo.algorithms.moo.nsga2 import NSGA2\n'
            'from pymoo.operators.crossover.sbx import SBX\n'
            'from pymoo.operators.mutation.pm import PM\n'
            'from pymoo.operators.repair.rounding import RoundingRepair\n'
            'from pymoo.optimize import minimize\n'
            'from pymoo.problems import get_problem\n'
            'r = minimize(get_problem("zdt1", n_var=5), NSGA2(pop_size=8),'
            ' ("n_gen", 2), seed=1)\n'
            'print("ok")\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == 'ok'
    assert 'compiled' not in out.stderr.lower()


def test_flops_range_override():
    model = Synthetic((None, None))
    rows = NSGA2Search(model, population=8, generations=2, parents=4,
                       flops_range=RANGE).run()
    assert all(RANGE[0] <= r['flops'] <= RANGE[1] for r in rows)
    assert model.sampler.flops_range == (0., float('inf'))
