"""Final searches over a trained supernet, by name (``final=`` of the search
hook): each is ``fn(model, **cfg) -> rows``, rows best first, each a dict
with at least ``arch`` (the sampler's key string), ``flops`` and ``top1``.
``model`` is a search algorithm (Cream, sandwich, K-shot) exposing
``sampler`` (:class:`~cream_mm.search.protocol.SubnetSampler`) and
``val_top1(arch)``.
"""
from __future__ import annotations

from typing import Callable

FINAL_SEARCHES: dict[str, Callable] = {}


def register_final(name: str):
    def deco(fn):
        FINAL_SEARCHES[name] = fn
        return fn
    return deco


def run_final(name: str, model, **cfg) -> list[dict]:
    if name not in FINAL_SEARCHES:
        raise ValueError(f'final={name!r}: allowed '
                         f'{", ".join(map(repr, FINAL_SEARCHES))}')
    return FINAL_SEARCHES[name](model, **cfg)


@register_final('evolution')
def _evolution(model, **cfg) -> list[dict]:
    from .evolution import EvolutionSearch
    return EvolutionSearch(model, **cfg).run()
