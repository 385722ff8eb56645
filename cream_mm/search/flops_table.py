"""Per-layer look-up table of path FLOPs (the Flops(.) of Eq. 3 / Alg. 1).

In a Cream space the input size and the input width of every searched layer
are fixed by its position (a stage's first layer is never skip, so widths
and strides do not depend on earlier choices), hence the cost of a path is
``stem + tail + sum_l table[res, l, op_l]``. The entries are
:func:`~cream_mm.models.complexity.layer_cost` -- the foundation's counter --
so a look-up equals :func:`~cream_mm.models.complexity.arch_cost` on the same
path exactly, and the space's minimum and maximum are exact sums of per-layer
minima and maxima.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..arch import Arch, ArchError
from ..models.complexity import layer_cost, stem_cost, tail_cost
from ..models.supernet import SearchSpace

METRICS = ('flops', 'macs', 'params')
#: display unit of each metric (a cost divided by ``scale`` is in it)
UNITS = dict(flops='MFLOPs', macs='MMACs', params='M params')


class CostTable:
    """The cost-table protocol of the sampler, board, evolutions, Pareto /
    NSGA-II searches and export: an additive cost
    ``base[r] + sum_l table[r, l, op_l]`` per resolution index ``r`` --
    the Flops(.) of Eq. 3, or a measured latency
    (:class:`~cream_mm.search.latency_table.LatencyTable`).

    Subclasses fill ``space``, ``metric``, ``resolutions``, ``table``
    (R, L, n_ops float64; ``inf`` for an op a layer cannot take) and
    ``base`` (R,), then call :meth:`_finish`. Class attributes: ``unit``
    (display unit), ``scale`` (a cost divided by it is in ``unit``),
    ``axis_label`` (plots), ``log_key`` (training log), ``pareto_step`` (a
    Pareto bucket, cost units) and ``min_bin`` (the sampler histogram's
    finest bin, cost units).
    """
    metric: str = 'flops'
    unit: str = 'MFLOPs'
    scale: float = 1e6
    axis_label: str = 'FLOPs (M, paper counting)'
    log_key: str = 'flops'
    pareto_step: float = 10e6
    min_bin: float = 1.

    def _finish(self):
        # plain Python copies: a single look-up is a few list indexings
        self._rows, self._base = self.table.tolist(), self.base.tolist()

    def fmt(self, value: float) -> str:
        """A cost as short text (error messages)."""
        return f'{value / 1e6:.2f}M'

    def summary(self, arch) -> dict:
        """Extra fields of the export summary for ``arch`` (none)."""
        return {}

    def res_index(self, resolution: int) -> int:
        size = resolution or self.space.input_size
        if size not in self.resolutions:
            raise ArchError(f'resolution {size}: table covers '
                            f'{self.resolutions}')
        return self.resolutions.index(size)

    def cost(self, code: Sequence[int], resolution: int = 0) -> float:
        """Cost of one encoded path (a few microseconds)."""
        r = self.res_index(resolution)
        row = self._rows[r]
        return self._base[r] + sum(row[l][c] for l, c in enumerate(code))

    def arch_cost(self, arch: Arch | str) -> float:
        return self.cost(*self.space.encode(arch))

    def batch_cost(self, codes: torch.Tensor, res_idx: torch.Tensor
                   ) -> torch.Tensor:
        """Costs of N paths: ``codes`` (N, L) op indices, ``res_idx`` (N,)."""
        layers = torch.arange(codes.shape[1])
        per_layer = self.table[res_idx[:, None], layers[None], codes]
        return self.base[res_idx] + per_layer.sum(1)

    def bounds(self, allowed: torch.Tensor | None = None,
               res_allowed: Sequence[int] | None = None
               ) -> tuple[float, float]:
        """Exact (min, max) over the space; ``allowed`` (L, n_ops) bool
        masks ops a sampler can draw, ``res_allowed`` resolution indices."""
        table = self.table
        if allowed is not None:
            table = table.masked_fill(~allowed[None], float('inf'))
        lo = self.base + table.min(2).values.sum(1)
        hi = self.base + table.masked_fill(table.isinf(), -float('inf')
                                           ).max(2).values.sum(1)
        idx = list(res_allowed) if res_allowed is not None else \
            list(range(len(self.resolutions)))
        return float(lo[idx].min()), float(hi[idx].max())


class FlopsTable(CostTable):
    """Costs of every (resolution, layer, op) of a :class:`SearchSpace`.

    Args:
        space: the search space.
        metric: ``'flops'`` (the paper's counting, default), ``'macs'`` or
            ``'params'``.
        num_classes: classifier width (the head's FC is part of the cost).
        with_head: include pool, ``conv_head`` and FC as the paper does.
    """

    def __init__(self, space: SearchSpace, metric: str = 'flops',
                 num_classes: int = 1000, with_head: bool = True,
                 in_channels: int = 3):
        if metric not in METRICS:
            raise ArchError(f'flops_metric={metric!r}: allowed '
                            f'{", ".join(METRICS)}')
        self.space, self.metric = space, metric
        self.unit = UNITS[metric]
        if metric != 'flops':
            self.axis_label = f'{metric} (M)'
        self.resolutions = space.resolutions or (space.input_size, )
        inf = float('inf')
        n_ops = len(space.ops)
        self.table = torch.full((len(self.resolutions), space.num_layers,
                                 n_ops), inf, dtype=torch.float64)
        self.base = torch.zeros(len(self.resolutions), dtype=torch.float64)
        for r, size in enumerate(self.resolutions):
            cost, hw = stem_cost((size, size), in_channels)
            for l, (_, i, cin, cout, stride) in enumerate(space.layers()):
                for op in space.layer_ops(i):
                    c, out_hw = layer_cost(op, cin, cout, stride, hw)
                    self.table[r, l, space.ops.index(op)] = getattr(c, metric)
                hw = out_hw  # skip keeps hw; the first layer is never skip
            cost = cost + tail_cost(space.stage_channels[-1], hw, num_classes,
                                    with_head)
            self.base[r] = getattr(cost, metric)
        self._finish()
