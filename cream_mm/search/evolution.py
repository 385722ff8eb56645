"""SPOS-style evolution search over a trained hypernetwork (Guo et al. [8]),
the baseline of Tab. 1 #1 (and #6 with a Cream-trained supernet).

Population ``population`` of random in-range paths; each generation keeps
the ``parents`` best by validation top-1 with the shared weights, and adds
``mutations`` mutants (each layer -- and the resolution -- redrawn with
probability ``mutation_prob`` from the sampler's per-layer distribution) and
``crossovers`` children (each layer from either parent). Children outside
the FLOPs range are redrawn. Every draw uses the sampler's generator, so the
search is reproducible and identical on every rank.
"""
from __future__ import annotations

import torch

from ..arch import format_arch


class EvolutionSearch:
    """Evolution over ``model`` (a :class:`CreamSearch` with attached
    validation batches)."""

    def __init__(self, model, population: int = 50, generations: int = 20,
                 parents: int = 10, mutations: int = 25, crossovers: int = 25,
                 mutation_prob: float = 0.1, max_tries: int = 1000):
        for name, v in dict(population=population, generations=generations,
                            parents=parents).items():
            if int(v) < 1:
                raise ValueError(f'evolution {name}={v}: must be >= 1')
        if not 0 < mutation_prob <= 1:
            raise ValueError(f'evolution mutation_prob={mutation_prob}: '
                             'must be in (0, 1]')
        self.model, self.sampler = model, model.sampler
        self.population, self.generations = population, generations
        self.parents, self.mutations, self.crossovers = (parents, mutations,
                                                         crossovers)
        self.mutation_prob, self.max_tries = mutation_prob, max_tries
        self.scores: dict[tuple, float] = {}

    def _in_range(self, code, r) -> bool:
        lo, hi = self.sampler.flops_range
        cost = float(self.sampler.table.batch_cost(
            torch.tensor([code]), torch.tensor([r]))[0])
        return lo <= cost <= hi

    def _rand(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.sampler.generator)

    def _res_index(self, res: int) -> int:
        return self.sampler.table.res_index(res)

    def _key(self, code, r) -> tuple:
        return tuple(code), r

    def _mutate(self, code, r):
        codes, res = self.sampler.draw(1)
        flip = self._rand(len(code) + 1) < self.mutation_prob
        new = [int(c) if f else o
               for o, c, f in zip(code, codes[0], flip[:-1])]
        return new, int(res[0]) if flip[-1] else r

    def _cross(self, a, b):
        pick = self._rand(len(a[0]) + 1) < 0.5
        code = [x if p else y for x, y, p in zip(a[0], b[0], pick[:-1])]
        return code, a[1] if pick[-1] else b[1]

    def _children(self, make, n: int) -> list:
        out = []
        for _ in range(self.max_tries):
            if len(out) >= n:
                break
            code, r = make()
            if self._in_range(code, r) and self._key(code, r) not in \
                    self.scores and (code, r) not in out:
                out.append((code, r))
        return out

    def _score(self, cands) -> None:
        for code, r in cands:
            key = self._key(code, r)
            if key not in self.scores:
                size = self.sampler.table.resolutions[r] \
                    if self.model.space.resolutions else 0
                arch = self.model.space.decode(code, size)
                self.scores[key] = self.model.val_top1(arch)

    def run(self) -> list[dict]:
        """Rows (arch, FLOPs, top1) of every evaluated path, best first."""
        pop = []
        while len(pop) < self.population:
            code, size, _ = self.sampler.sample_code()
            r = self._res_index(size)
            if (list(code), r) not in pop:
                pop.append((list(code), r))
        self._score(pop)
        for _ in range(self.generations):
            ranked = sorted(self.scores, key=self.scores.get, reverse=True)
            top = [(list(c), r) for c, r in ranked[:self.parents]]

            def pick():
                g = self.sampler.generator
                return top[int(torch.randint(len(top), (1, ), generator=g))]
            kids = self._children(lambda: self._mutate(*pick()),
                                  self.mutations)
            kids += self._children(lambda: self._cross(pick(), pick()),
                                   self.crossovers)
            self._score(kids)
        rows = []
        for (code, r), score in self.scores.items():
            size = self.sampler.table.resolutions[r] \
                if self.model.space.resolutions else 0
            arch = self.model.space.decode(code, size)
            rows.append(dict(arch=format_arch(arch), top1=score,
                             flops=float(self.sampler.table.batch_cost(
                                 torch.tensor([code]),
                                 torch.tensor([r]))[0])))
        return sorted(rows, key=lambda x: (-x['top1'], x['flops']))
