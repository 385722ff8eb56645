"""The search's cost (``cost=`` of a search model): the Flops(.) of Eq. 3
(default, :class:`~cream_mm.search.flops_table.FlopsTable`) or a measured
latency table (:class:`~cream_mm.search.latency_table.LatencyTable`)::

    model = dict(type='CreamSearch', ...,
                 cost=dict(type='latency', table='work_dirs/lat.json',
                           range=(None, 3.0),          # ms
                           predictor='calibrated',     # or 'sum'
                           expect=dict(runtime='fused', threads=1),
                           on_mismatch='error'))       # or 'warn'

With a latency cost the sampler's range is ``cost.range`` in ms, or
``cost.range_fraction=(a, b)``: the part ``[min + a * span, min + b *
span]`` of the space's predicted span (a portable budget, e.g. ``(0,
0.4)``: the cheapest 40 %); the model's ``flops_range`` is not used.
Both tables have the same interface
(:class:`~cream_mm.search.flops_table.CostTable`), so sampler, board,
evolutions, Pareto / NSGA-II searches, plots and export take either.
"""
from __future__ import annotations

from .flops_table import FlopsTable
from .latency_table import LatencyTable

COST_TYPES = ('flops', 'latency')
LATENCY_KEYS = ('type', 'table', 'range', 'range_fraction', 'predictor',
                'expect', 'on_mismatch')


def model_geometry(model_cfg: dict) -> tuple:
    """``(SearchSpace, num_classes, head_channels, in_channels)`` of a
    search model config (what a latency table is measured for)."""
    from ..models.supernet import SearchSpace
    sup, head = model_cfg.get('supernet', {}), model_cfg.get('head', {})
    space = SearchSpace.build(sup.get('space', 'mbconv'))
    return (space, int(head.get('num_classes', 1000)),
            int(head.get('head_channels', 1280)),
            int(sup.get('in_channels', 3)))


def build_cost(cost: dict | None, space, num_classes: int,
               head_channels: int, in_channels: int = 3,
               flops_metric: str = 'flops', flops_range=(None, None),
               flops_table=None):
    """``(table, range)`` of a search: a FlopsTable over ``flops_range``
    when ``cost`` is None or ``dict(type='flops')``, else the latency
    table and ``cost.range`` (ms). ``flops_table``: a callable building
    the search's own FlopsTable (e.g. the detection search's backbone-only
    count); default: the classification path with its head. Bad keys or
    values: one error naming the field and the allowed values."""
    cost = dict(cost or dict(type='flops'))
    kind = cost.get('type', 'flops')
    if kind not in COST_TYPES:
        raise ValueError(f'cost.type={kind!r}: allowed '
                         f'{", ".join(map(repr, COST_TYPES))}')
    allowed = ('type', ) if kind == 'flops' else LATENCY_KEYS
    unknown = sorted(set(cost) - set(allowed))
    if unknown:
        raise ValueError(f'cost: unknown keys {unknown} for type '
                         f'{kind!r}; allowed {", ".join(allowed)}')
    if kind == 'flops':
        table = (flops_table() if flops_table is not None
                 else FlopsTable(space, flops_metric, num_classes))
        return table, flops_range
    if not cost.get('table'):
        raise ValueError("cost.table: the latency table file is required "
                         "(build one with tools/build_latency_table.py)")
    rng, frac = cost.get('range'), cost.get('range_fraction')
    if (rng is None) == (frac is None):
        raise ValueError('cost: give exactly one of range=(min_ms, max_ms) '
                         'and range_fraction=(a, b) with 0 <= a <= b <= 1')
    if rng is not None and (not isinstance(rng, (list, tuple))
                            or len(rng) != 2):
        raise ValueError(f'cost.range={rng!r}: give (min_ms, max_ms), '
                         'None for an open bound')
    if frac is not None and not (isinstance(frac, (list, tuple))
                                 and len(frac) == 2
                                 and 0 <= frac[0] <= frac[1] <= 1):
        raise ValueError(f'cost.range_fraction={frac!r}: give (a, b) with '
                         '0 <= a <= b <= 1')
    table = LatencyTable.load(cost['table'], space, num_classes,
                              head_channels, in_channels=in_channels,
                              predictor=cost.get('predictor', 'calibrated'),
                              expect=cost.get('expect'),
                              on_mismatch=cost.get('on_mismatch', 'error'))
    if frac is not None:
        lo, hi = table.bounds()
        rng = (lo + frac[0] * (hi - lo), lo + frac[1] * (hi - lo))
    return table, tuple(rng)


def attach_cost_digest(module, table) -> None:
    """For a latency cost: a ``cost_digest`` buffer (the table's SHA-1)
    in ``module``'s checkpoints, and loading one whose digest differs is
    refused -- a search resumed with a rebuilt table would continue with
    other costs. FLOPs tables add nothing (their state dicts unchanged)."""
    import torch
    if not hasattr(table, 'digest'):
        return
    module.register_buffer('cost_digest', torch.tensor(
        list(table.digest()), dtype=torch.uint8))

    def check(state_dict, prefix, *args):
        key = prefix + 'cost_digest'
        if key in state_dict and not torch.equal(
                state_dict[key].cpu(), module.cost_digest.cpu()):
            raise ValueError(
                'checkpoint was searched with another latency table than '
                f'cost.table ({table.data.get("conditions", {})}): resume '
                'with the table it was searched with')
    module._register_load_state_dict_pre_hook(check)


__all__ = ['COST_TYPES', 'attach_cost_digest', 'build_cost',
           'model_geometry']
