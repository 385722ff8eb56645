"""The :class:`~cream_mm.search.protocol.SubnetSampler` of the AttentiveNAS /
AlphaNet space.

As AttentiveNAS's ``_sample_active_subnet``: every gene (resolution, 9
widths, 7 depths, 7 kernels, 7 expands) is drawn uniformly and
independently from its choices; a FLOPs range is met by rejection
(``sample_active_subnet_within_range``). ``mutate`` re-draws a gene to a
*different* value with probability ``prob`` (``mutate_and_reset``);
``crossover`` takes each gene from either parent with probability 1/2
(``crossover_and_reset``). Costs are :func:`~cream_mm.models.
attentive_complexity.attentive_cost` (multiply-adds, the AlphaNet table's
"FLOPs"; raw counts, not millions).
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn as nn

from ..arch import ArchError
from ..models.attentive_arch import (AttentiveArch, AttentiveSpace,
                                     format_attentive_arch,
                                     parse_attentive_arch)
from ..models.attentive_complexity import attentive_cost
from ..models.attentive_supernet import AttentiveSupernet
from .rng_state import GeneratorStateMixin
from .samplers import register_sampler

METRICS = ('flops', 'macs', 'params')


def _range(flops_range) -> tuple[float, float]:
    lo, hi = (list(flops_range or ()) + [None, None])[:2]
    out = (float(lo) if lo is not None else 0.,
           float(hi) if hi is not None else float('inf'))
    if out[0] > out[1]:
        raise ArchError(f'flops_range={tuple(flops_range)}: min > max')
    return out


class AttentiveSampler(GeneratorStateMixin, nn.Module):
    """Uniform per-gene sampler of an :class:`AttentiveSpace`.

    Args:
        space: the space.
        flops_range: ``(min, max)`` cost (``None`` bounds: unbounded).
        flops_metric: ``'flops'`` / ``'macs'`` (the same count here) or
            ``'params'``.
        num_classes: classifier width (part of the cost).
        seed: generator seed.
        max_draws: rejection attempts before giving up.
    """

    def __init__(self, space: AttentiveSpace | dict | None = None,
                 flops_range: Sequence[float | None] = (None, None),
                 flops_metric: str = 'flops', num_classes: int = 1000,
                 seed: int = 0, max_draws: int = 100000):
        super().__init__()
        if flops_metric not in METRICS:
            raise ArchError(f'flops_metric={flops_metric!r}; allowed: '
                            f'{", ".join(METRICS)}')
        self.space = AttentiveSpace.build(space)
        self.flops_metric, self.num_classes = flops_metric, num_classes
        self.max_draws = max_draws
        self.choices = self.space.gene_choices()
        self.generator = torch.Generator().manual_seed(int(seed))
        self.space_bounds = (self.cost(self.space.extreme(False)),
                             self.cost(self.space.extreme(True)))
        self.flops_range = _range(flops_range)
        self._check_feasible()

    def _check_feasible(self):
        lo, hi = self.flops_range
        smin, smax = self.space_bounds
        if hi < smin or lo > smax:
            raise ArchError(
                f'flops_range=({lo:.6g}, {hi:.6g}) {self.flops_metric} '
                f'cannot be met: the space spans [{smin:.6g}, {smax:.6g}] '
                f'(min / max subnet); widen the range')

    # --------------------------------------------------------------- draws
    def _draw_values(self) -> list[int]:
        idx = [int(torch.randint(len(c), (1, ), generator=self.generator))
               for c in self.choices]
        return [c[i] for c, i in zip(self.choices, idx)]

    def _in_range(self, arch) -> bool:
        lo, hi = self.flops_range
        return lo <= self.cost(arch) <= hi

    def sample(self) -> AttentiveArch:
        for _ in range(self.max_draws):
            arch = self.space.from_values(self._draw_values())
            if self._in_range(arch):
                return arch
        lo, hi = self.flops_range
        raise ArchError(
            f'no subnet with {self.flops_metric} in ({lo:.6g}, {hi:.6g}) in '
            f'{self.max_draws} uniform draws; the space spans '
            f'[{self.space_bounds[0]:.6g}, {self.space_bounds[1]:.6g}]')

    def extreme(self, largest: bool = True) -> AttentiveArch:
        """The max / min subnet (every gene at its largest / smallest
        choice: AttentiveNAS's ``sample_max_subnet`` / ``_min_``)."""
        return self.space.extreme(largest)

    def cost(self, arch) -> float:
        a = parse_attentive_arch(arch)
        sp = self.space
        c = attentive_cost(a, self.num_classes, stage_strides=sp.stage_strides,
                           stage_se=sp.stage_se,
                           final_expand=sp.final_expand)
        return float(c.params if self.flops_metric == 'params' else c.macs)

    def mutate(self, arch, prob: float) -> AttentiveArch:
        vals = self.space.values(parse_attentive_arch(arch))
        out = []
        for v, choices in zip(vals, self.choices):
            flip = float(torch.rand(1, generator=self.generator)) < prob
            others = [c for c in choices if c != v]
            if flip and others:
                v = others[int(torch.randint(len(others), (1, ),
                                             generator=self.generator))]
            out.append(v)
        return self.space.from_values(out)

    def crossover(self, a, b) -> AttentiveArch:
        va = self.space.values(parse_attentive_arch(a))
        vb = self.space.values(parse_attentive_arch(b))
        pick = torch.rand(len(va), generator=self.generator) < 0.5
        return self.space.from_values(
            [x if p else y for x, y, p in zip(va, vb, pick)])

    # ------------------------------------------------------------ encoding
    def key(self, arch) -> str:
        return format_attentive_arch(parse_attentive_arch(arch))

    def parse(self, text: str) -> AttentiveArch:
        return parse_attentive_arch(text, self.space)

    def resolution(self, arch) -> int:
        return parse_attentive_arch(arch).resolution

    def genome(self, arch) -> list[int]:
        """Index of every gene's value among its choices."""
        a = parse_attentive_arch(arch, self.space)
        return [c.index(v) for v, c in zip(self.space.values(a),
                                           self.choices)]

    def from_genome(self, genes: Sequence[int]) -> AttentiveArch:
        if len(genes) != len(self.choices):
            raise ArchError(f'genome: {len(genes)} genes, the space has '
                            f'{len(self.choices)}')
        return self.space.from_values(
            [c[int(g)] for g, c in zip(genes, self.choices)])

    def genome_bounds(self) -> tuple[list[int], list[int]]:
        return [0] * len(self.choices), [len(c) - 1 for c in self.choices]

    def encode(self, arch) -> tuple[torch.Tensor, torch.Tensor]:
        """(one-hot of resolution, depth, kernel and expand choices;
        one-hot of the width choices) -- K-shot's simplex-net inputs."""
        genes = self.genome(arch)
        n = self.space.num_stages
        width = set(range(1, n + 3))

        def onehot(which):
            return torch.cat([torch.nn.functional.one_hot(
                torch.tensor(genes[i]), len(self.choices[i])).float()
                for i in which])
        rest = [i for i in range(len(genes)) if i not in width]
        return onehot(rest), onehot(sorted(width))

    def reseeded(self, seed: int, flops_range=None) -> 'AttentiveSampler':
        new = copy.deepcopy(self)
        new.generator = torch.Generator().manual_seed(int(seed))
        if flops_range is not None:
            new.flops_range = _range(flops_range)
            new._check_feasible()
        return new


@register_sampler(AttentiveSupernet)
def _attentive_sampler(supernet, num_classes, flops_range, flops_metric,
                       **kwargs):
    return AttentiveSampler(supernet.space, flops_range, flops_metric,
                            num_classes, **kwargs)
