"""AlphaNet's evolutionary search keeping a Pareto front
(``parallel_supernet_evo_search.py``, reference ``alphanet_kshot.md`` §1.5),
for any model exposing ``sampler`` (the search protocol) and
``val_top1(arch)``.

* initial population: the smallest subnet (if inside the FLOPs range) and
  random in-range subnets (``sampler.sample()``);
* the front is a dict keyed by the FLOPs bucket ``round(cost / step)``
  (``step`` = 10 MFLOPs by default); each bucket keeps the subnet of
  highest top-1 among those evaluated in it;
* each generation makes ``mutations`` mutants (``sampler.mutate(arch,
  mutation_prob)``, 0.2) and ``crossovers`` children
  (``sampler.crossover``), parents drawn uniformly from the front's
  buckets; offspring are rejection-sampled into the FLOPs range.

Every draw uses the sampler's generator (reproducible, the same on every
rank). Unlike the authors' script, the front is returned, and
:func:`save_front` writes it (JSON) and plots it.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .finals import register_final


class ParetoSearch:
    """Pareto-front evolution over ``model`` (see module docstring).

    Args:
        population: initial candidates (the smallest subnet included).
        generations: rounds of offspring.
        mutations, crossovers: offspring per round of each kind.
        mutation_prob: per-gene redraw probability of ``sampler.mutate``.
        step: width of a cost bucket, in the sampler's cost units
            (default: the cost table's ``pareto_step``, 10 MFLOPs for
            FLOPs, 1/50 of the space's span for a latency table).
        max_tries: draws allowed to find one in-range child.
        flops_range: search range if not the sampler's (e.g. AlphaNet's
            [200, 1200] MFLOPs over a supernet trained on the whole space):
            a copy of the sampler reseeded from its own generator.
    """

    def __init__(self, model, population: int = 50, generations: int = 20,
                 mutations: int = 25, crossovers: int = 25,
                 mutation_prob: float = 0.2, step: float | None = None,
                 max_tries: int = 1000, flops_range=None):
        for name, v in dict(population=population, generations=generations,
                            max_tries=max_tries).items():
            if int(v) < 1:
                raise ValueError(f'pareto {name}={v}: must be >= 1')
        if step is None:
            step = getattr(getattr(model.sampler, 'table', None),
                           'pareto_step', 10e6)
        if not step > 0:
            raise ValueError(f'pareto step={step}: must be > 0')
        if not 0 < mutation_prob <= 1:
            raise ValueError(f'pareto mutation_prob={mutation_prob}: must '
                             'be in (0, 1]')
        self.model, self.sampler = model, model.sampler
        if flops_range is not None:
            seed = int(torch.randint(1 << 62, (1, ),
                                     generator=model.sampler.generator))
            self.sampler = model.sampler.reseeded(seed, flops_range)
        self.population, self.generations = int(population), int(generations)
        self.mutations, self.crossovers = int(mutations), int(crossovers)
        self.mutation_prob, self.step = float(mutation_prob), float(step)
        self.max_tries = int(max_tries)
        self.evaluated: dict[str, dict] = {}  # key -> row
        self.front: dict[int, str] = {}  # bucket -> key of its best
        self.offspring: list[str] = []  # keys of every accepted child

    def in_range(self, arch) -> bool:
        lo, hi = self.sampler.flops_range
        return lo <= self.sampler.cost(arch) <= hi

    def bucket(self, cost: float) -> int:
        return int(round(cost / self.step))

    def evaluate(self, arch) -> dict:
        """Score ``arch`` once (cached by key) and update its bucket."""
        key = self.sampler.key(arch)
        if key not in self.evaluated:
            cost = float(self.sampler.cost(arch))
            row = dict(arch=key, flops=cost, top1=float(
                self.model.val_top1(arch)), bucket=self.bucket(cost))
            self.evaluated[key] = row
            best = self.front.get(row['bucket'])
            if best is None or row['top1'] > self.evaluated[best]['top1']:
                self.front[row['bucket']] = key
        return self.evaluated[key]

    def _parent(self):
        keys = [self.front[b] for b in sorted(self.front)]
        j = int(torch.randint(len(keys), (1, ),
                              generator=self.sampler.generator))
        return self.sampler.parse(keys[j])

    def _child(self, make):
        for _ in range(self.max_tries):
            child = make()
            if self.in_range(child):
                self.offspring.append(self.sampler.key(child))
                return child
        raise RuntimeError(f'pareto: no child inside flops_range '
                           f'{self.sampler.flops_range} in {self.max_tries} '
                           'draws; widen the range or raise max_tries')

    def run(self) -> list[dict]:
        """Rows (``arch``, ``flops``, ``top1``, ``bucket``, ``front``) of
        every evaluated subnet, best top-1 first."""
        smallest = self.sampler.extreme(largest=False)
        pop = [smallest] if self.in_range(smallest) else []
        keys = {self.sampler.key(a) for a in pop}
        for _ in range(self.population * self.max_tries):
            if len(pop) >= self.population:
                break
            arch = self.sampler.sample()
            if self.sampler.key(arch) not in keys:
                keys.add(self.sampler.key(arch))
                pop.append(arch)
        for arch in pop:
            self.evaluate(arch)
        for _ in range(self.generations):
            kids = [self._child(lambda: self.sampler.mutate(
                self._parent(), self.mutation_prob))
                for _ in range(self.mutations)]
            kids += [self._child(lambda: self.sampler.crossover(
                self._parent(), self._parent()))
                for _ in range(self.crossovers)]
            for arch in kids:
                self.evaluate(arch)
        return self.rows()

    def rows(self) -> list[dict]:
        on_front = set(self.front.values())
        rows = [dict(r, front=r['arch'] in on_front)
                for r in self.evaluated.values()]
        return sorted(rows, key=lambda r: (-r['top1'], r['flops']))

    def front_rows(self) -> list[dict]:
        """The front, by increasing FLOPs."""
        return [dict(self.evaluated[self.front[b]], front=True)
                for b in sorted(self.front)]


def save_front(rows: list[dict], out_dir, name: str = 'pareto',
               title: str = '', scale: float = 1e6,
               xlabel: str | None = None) -> dict:
    """Write ``<name>.json`` (front by cost + every evaluated row) and
    ``<name>.png`` (accuracy vs cost / ``scale``: MFLOPs by default, ms
    for a latency table with ``scale=1``; ``xlabel`` names the axis),
    front highlighted."""
    from .hooks import plot_pareto
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    front = sorted((r for r in rows if r.get('front')),
                   key=lambda r: r['flops'])
    data = dict(front=front, evaluated=rows)
    (out / f'{name}.json').write_text(json.dumps(data, indent=1))
    plot_pareto([dict(flops=r['flops'] / scale, score=r['top1'])
                 for r in rows],
                [dict(flops=r['flops'] / scale, score=r['top1'])
                 for r in front], out / f'{name}.png', title=title or
                'Pareto front (best top-1 per cost bucket)',
                highlight='front', xlabel=xlabel)
    return data


@register_final('pareto')
def _pareto(model, **cfg) -> list[dict]:
    return ParetoSearch(model, **cfg).run()


__all__ = ['ParetoSearch', 'save_front']
