"""What the search algorithms ask of a search space -- one contract for the
Cream spaces (:class:`~cream_mm.search.sampler.PathSampler` over a
:class:`~cream_mm.models.supernet.CreamSupernet`) and the AttentiveNAS /
AlphaNet space, so that Cream, SPOS, the sandwich rule, K-shot supernets,
the evolutions (top-k, Pareto, NSGA-II), the export and the Kendall-tau tool
are written once and run on either space (mmrazor's split of search space,
sampler and algorithm).

An *arch* is whatever the space uses (``cream_mm.arch.Arch`` for Cream); the
sampler turns it into a canonical string (:meth:`SubnetSampler.key`) and
back (:meth:`SubnetSampler.parse`), and into integers for genetic search
(:meth:`SubnetSampler.genome`). These are :class:`typing.Protocol` classes:
nothing inherits from them, ``isinstance`` checks only the method names.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import torch
import torch.nn as nn


@runtime_checkable
class SubnetSampler(Protocol):
    """The algorithms' view of a search space (owns a seeded generator whose
    state is saved in checkpoints, so every rank and every resumed run
    draws the same archs)."""

    generator: torch.Generator
    flops_range: tuple[float, float]

    def sample(self) -> Any:
        """A random arch with cost inside ``flops_range``."""

    def extreme(self, largest: bool = True) -> Any:
        """The largest / smallest arch of the space (sandwich rule)."""

    def cost(self, arch) -> float:
        """Cost of ``arch`` in the search's metric (FLOPs by default)."""

    def mutate(self, arch, prob: float) -> Any:
        """Each gene redrawn with probability ``prob`` (may leave the
        range: callers reject)."""

    def crossover(self, a, b) -> Any:
        """Each gene from ``a`` or ``b`` with probability 1/2."""

    def key(self, arch) -> str:
        """Canonical, human-readable string of ``arch`` (dict keys, logs,
        ``.arch`` files); ``parse(key(a)) == a``."""

    def parse(self, text: str) -> Any:
        """Inverse of :meth:`key`; a clear error names the bad token."""

    def resolution(self, arch) -> int | None:
        """Input size the arch runs at (``None``: the data's size)."""

    def genome(self, arch) -> list[int]:
        """Integers in ``genome_bounds()`` (NSGA-II through pymoo)."""

    def from_genome(self, genes: Sequence[int]) -> Any:
        """Inverse of :meth:`genome`."""

    def genome_bounds(self) -> tuple[list[int], list[int]]:
        """Inclusive per-gene ``(low, high)``."""

    def encode(self, arch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(architecture one-hot, channel encoding or None)`` -- the
        inputs of K-shot's simplex-net (Eq. 6 / Eq. 11 of K-shot NAS)."""

    def reseeded(self, seed: int, flops_range=None) -> 'SubnetSampler':
        """A copy with its own generator and optionally another range."""


@runtime_checkable
class Supernet(Protocol):
    """A weight-sharing backbone whose active subnet is set per forward."""

    def set_path(self, arch) -> None:
        """Activate ``arch`` for the following forwards."""

    def forward(self, x: torch.Tensor, arch=None):
        """Features of the active (or given) arch, per ``out_indices``."""

    def export(self, arch) -> nn.Module:
        """``arch`` as a fixed, registered backbone carrying the supernet's
        weights (``load_state_dict(strict=True)``, no key rewriting)."""

    def backbone_cfg(self, arch) -> dict:
        """Config of the exported fixed backbone, e.g. ``dict(type=
        'CreamNet', arch='k3e4|...')`` -- what export writes into the
        retraining and detection configs."""

    def searched_modules(self) -> list[str]:
        """Names of the submodules whose parameters depend on the choice
        (per-op candidates, elastic blocks): K-shot keeps K copies of
        exactly these parameters."""
