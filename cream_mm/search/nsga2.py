"""NSGA-II (Deb et al., 2002) over a trained supernet, the search of K-shot
NAS (§3: population 50, 20 generations, the top 20 architectures as
parents; hard FLOPs constraint), through pymoo rather than a hand-written
NSGA-II.

The genome is the sampler's (:meth:`SubnetSampler.genome`, integer genes in
``genome_bounds()``); pymoo's SBX crossover and polynomial mutation work on
it with rounding repair (pymoo's documented integer set-up). Objectives:
``(-top1, cost)`` with ``top1 = model.val_top1(arch)`` and ``cost`` the
sampler's metric (FLOPs); constraints: ``flops_range[0] <= cost <=
flops_range[1]`` (infeasible paths are never evaluated). The first
generation is drawn in range by a seeded copy of the sampler; parents are
drawn uniformly from the best ``parents`` of the population by NSGA-II's
order (non-domination rank, then crowding distance). Everything random is
seeded by ``seed`` (pymoo's ``random_state``), so the search is
reproducible and identical on every rank.
"""
from __future__ import annotations

import numpy as np
from pymoo.config import Config
from pymoo.core.problem import Problem
from pymoo.core.selection import Selection

from .finals import register_final

Config.warnings['not_compiled'] = False  # pure-Python pymoo, on purpose


class TopParentsSelection(Selection):
    """Parents drawn uniformly from the ``parents`` best individuals by
    NSGA-II's order (rank, then larger crowding distance) -- the paper's
    "top 20 architectures ... selected as parents"."""

    def __init__(self, parents: int = 20, **kwargs):
        super().__init__(**kwargs)
        self.parents = int(parents)

    def _do(self, problem, pop, n_select, n_parents, *args,
            random_state=None, **kwargs):
        rank = pop.get('rank')
        crowd = pop.get('crowding')
        if rank is None or any(r is None for r in rank):
            order = np.arange(len(pop))
        else:
            crowd = np.nan_to_num(np.asarray(crowd, dtype=float),
                                  posinf=1e30)
            order = np.lexsort((-crowd, np.asarray(rank, dtype=float)))
        top = order[:max(1, min(self.parents, len(pop)))]
        idx = random_state.integers(0, len(top), size=(n_select, n_parents))
        return top[idx]


class _SupernetProblem(Problem):
    def __init__(self, search: 'NSGA2Search'):
        lo, hi = search.sampler.genome_bounds()
        super().__init__(n_var=len(lo), n_obj=2, n_ieq_constr=2,
                         xl=np.asarray(lo), xu=np.asarray(hi), vtype=int)
        self.search = search

    def _evaluate(self, X, out, *args, **kwargs):
        F, G = [], []
        for genes in np.asarray(X).round().astype(int):
            top1, cost, (lo, hi) = self.search.evaluate(genes.tolist())
            F.append([-top1, cost / self.search.cost_scale])
            G.append([(lo - cost) / self.search.cost_scale,
                      (cost - hi) / self.search.cost_scale])
        out['F'], out['G'] = np.asarray(F), np.asarray(G)


class NSGA2Search:
    """NSGA-II over ``model`` (an algorithm exposing ``sampler`` and
    ``val_top1(arch)``, e.g. :class:`~cream_mm.search.kshot.KShotSearch`).

    Args:
        population: population size (paper 50).
        generations: generations after the first (paper 20).
        parents: parents are drawn from this many best (paper 20).
        offspring: children per generation (default: ``population``).
        crossover_prob, crossover_eta, mutation_eta: SBX / PM settings.
        seed: seeds the first generation and pymoo.
        cost_scale: costs are divided by this in pymoo (default: the cost
            table's ``scale``, 1e6 for MFLOPs, 1 for a latency table in
            ms).
        flops_range: the constraint (default: the sampler's range).
    """

    def __init__(self, model, population: int = 50, generations: int = 20,
                 parents: int = 20, offspring: int | None = None,
                 crossover_prob: float = 0.9, crossover_eta: float = 15.,
                 mutation_eta: float = 20., seed: int = 0,
                 cost_scale: float | None = None, max_tries: int = 100000,
                 flops_range=None):
        for name, v in dict(population=population, generations=generations,
                            parents=parents).items():
            if int(v) < 1:
                raise ValueError(f'nsga2 {name}={v}: must be >= 1')
        if offspring is not None and int(offspring) < 1:
            raise ValueError(f'nsga2 offspring={offspring}: must be >= 1')
        self.model, self.sampler = model, model.sampler
        if flops_range is not None:  # a copy: the search's own is intact
            self.sampler = model.sampler.reseeded(seed, flops_range)
        self.population, self.generations = int(population), int(generations)
        self.parents = int(parents)
        self.offspring = int(offspring) if offspring else self.population
        self.crossover_prob, self.crossover_eta = crossover_prob, crossover_eta
        self.mutation_eta, self.seed = mutation_eta, int(seed)
        if cost_scale is None:
            cost_scale = getattr(getattr(self.sampler, 'table', None),
                                 'scale', 1e6)
        self.cost_scale, self.max_tries = float(cost_scale), int(max_tries)
        self.scores: dict[str, tuple[float, float]] = {}  # key -> top1, cost
        self.pareto: list[dict] = []

    def evaluate(self, genes: list[int]):
        """``(top1, cost, flops_range)`` of a genome; top-1 only for paths
        in range (0 otherwise), each path evaluated once."""
        arch = self.sampler.from_genome(genes)
        key = self.sampler.key(arch)
        lo, hi = self.sampler.flops_range
        if key not in self.scores:
            cost = float(self.sampler.cost(arch))
            top1 = (float(self.model.val_top1(arch)) if lo <= cost <= hi
                    else 0.)
            self.scores[key] = (top1, cost)
        top1, cost = self.scores[key]
        return top1, cost, (lo, hi)

    def initial_population(self) -> np.ndarray:
        """``population`` distinct in-range genomes from a seeded copy of
        the sampler."""
        sampler = self.sampler.reseeded(self.seed)
        seen, rows = set(), []
        for _ in range(self.max_tries):
            if len(rows) == self.population:
                break
            arch = sampler.sample()
            key = sampler.key(arch)
            if key not in seen:
                seen.add(key)
                rows.append(sampler.genome(arch))
        if not rows:
            raise ValueError('nsga2: the sampler drew no path')
        return np.asarray(rows, dtype=int)

    def run(self) -> list[dict]:
        """Rows (arch, flops, top1, front) of every evaluated in-range
        path, best top-1 first; ``self.pareto``: the final non-dominated
        set (rows, by cost)."""
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.optimize import minimize
        algorithm = NSGA2(
            pop_size=self.population, n_offsprings=self.offspring,
            sampling=self.initial_population(),
            selection=TopParentsSelection(self.parents),
            crossover=SBX(prob=self.crossover_prob, eta=self.crossover_eta,
                          vtype=float, repair=RoundingRepair()),
            mutation=PM(eta=self.mutation_eta, vtype=float,
                        repair=RoundingRepair()),
            eliminate_duplicates=True)
        res = minimize(_SupernetProblem(self), algorithm,
                       ('n_gen', self.generations + 1), seed=self.seed,
                       verbose=False)
        lo, hi = self.sampler.flops_range
        front = set()
        for genes in np.atleast_2d(res.X if res.X is not None else
                                   np.zeros((0, 0))).round().astype(int):
            if genes.size:
                front.add(self.sampler.key(
                    self.sampler.from_genome(genes.tolist())))
        rows = [dict(arch=k, flops=c, top1=t, front=k in front)
                for k, (t, c) in self.scores.items() if lo <= c <= hi]
        rows.sort(key=lambda r: (-r['top1'], r['flops']))
        self.pareto = sorted((r for r in rows if r['front']),
                             key=lambda r: r['flops'])
        return rows


@register_final('nsga2')
def _nsga2(model, **cfg) -> list[dict]:
    return NSGA2Search(model, **cfg).run()


__all__ = ['NSGA2Search', 'TopParentsSelection']
