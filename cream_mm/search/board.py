"""The prioritized path board B = {alpha_k}_{k=1..K} (§3.1, Eq. 3).

The board lives in buffers (encoded paths, resolutions, FLOPs, scores), so
it is part of the search model's ``state_dict``: saved in every checkpoint,
restored on resume, identical on every rank (all ranks apply the same
updates with all-reduced scores).

Update rules (``rule``):

* ``'paper'`` (Eq. 3): a sampled path alpha replaces a board path alpha_k
  when ``Acc(alpha) >= Acc(alpha_k)`` and ``Flops(alpha) <= Flops(alpha_k)``;
  among the board paths it dominates, the least competitive (lowest score,
  then highest FLOPs) goes. The board keeps the Pareto front of what was
  sampled.
* ``'release'``: the authors' code -- compare with the worst board path only,
  and also replace it when ``Acc(alpha) > Acc(worst) + margin`` (5 points)
  whatever the FLOPs.

A path already on the board is never duplicated; its score is refreshed.
Scores are top-1 accuracies in percent; an unscored path holds ``-inf``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

RULES = ('paper', 'release')


class PathBoard(nn.Module):
    """K prioritized paths with FLOPs and scores (Eq. 3).

    Args:
        num_paths: K (10 in the paper; Tab. 2 ablates 1..50).
        num_layers: length of an encoded path (layers of the space).
        rule: ``'paper'`` or ``'release'`` (see module docstring).
        release_margin: accuracy margin of the release's extra insertion.
    """

    def __init__(self, num_paths: int = 10, num_layers: int = 30,
                 rule: str = 'paper', release_margin: float = 5.):
        super().__init__()
        if int(num_paths) < 1:
            raise ValueError(f'board num_paths={num_paths}: must be >= 1')
        if rule not in RULES:
            raise ValueError(f'board rule={rule!r}: allowed '
                             f'{", ".join(RULES)}')
        self.rule, self.release_margin = rule, float(release_margin)
        k = int(num_paths)
        self.register_buffer('codes', torch.full((k, num_layers), -1,
                                                 dtype=torch.long))
        self.register_buffer('resolutions', torch.zeros(k, dtype=torch.long))
        self.register_buffer('flops', torch.zeros(k, dtype=torch.float64))
        self.register_buffer('scores', torch.full((k, ), -float('inf'),
                                                  dtype=torch.float64))
        self.register_buffer('size', torch.zeros((), dtype=torch.long))

    @property
    def num_paths(self) -> int:
        return self.codes.shape[0]

    def __len__(self) -> int:
        return int(self.size)

    def add(self, code: Sequence[int], resolution: int, flops: float,
            score: float = -float('inf')) -> int:
        """Append a path while the board is not full (initialisation)."""
        n = len(self)
        if n >= self.num_paths:
            raise ValueError('board is full')
        self._write(n, code, resolution, flops, score)
        self.size += 1
        return n

    def _write(self, k, code, resolution, flops, score):
        self.codes[k] = torch.as_tensor(list(code), dtype=torch.long)
        self.resolutions[k] = int(resolution)
        self.flops[k] = float(flops)
        self.scores[k] = float(score)

    def index(self, code: Sequence[int], resolution: int = 0) -> int | None:
        """Board slot of a path, or None."""
        code = torch.as_tensor(list(code), dtype=torch.long)
        n = len(self)
        hit = ((self.codes[:n] == code).all(1)
               & (self.resolutions[:n] == int(resolution))).nonzero()
        return int(hit[0]) if len(hit) else None

    def entry(self, k: int) -> tuple[tuple[int, ...], int, float, float]:
        return (tuple(self.codes[k].tolist()), int(self.resolutions[k]),
                float(self.flops[k]), float(self.scores[k]))

    def entries(self) -> list[tuple[tuple[int, ...], int, float, float]]:
        return [self.entry(k) for k in range(len(self))]

    def set_score(self, k: int, score: float) -> None:
        self.scores[k] = float(score)

    def unscored(self) -> list[int]:
        return [k for k in range(len(self))
                if self.scores[k] == -float('inf')]

    def best(self) -> int:
        """Slot of the highest score (ties: fewer FLOPs)."""
        n = len(self)
        order = sorted(range(n), key=lambda k: (-float(self.scores[k]),
                                                float(self.flops[k])))
        return order[0]

    def _least_competitive(self, slots: list[int]) -> int:
        return min(slots, key=lambda k: (float(self.scores[k]),
                                         -float(self.flops[k])))

    def could_replace(self, flops: float) -> bool:
        """Whether a path of these FLOPs can enter under some accuracy
        (exact pre-screen: skip scoring when it cannot)."""
        if len(self) < self.num_paths or self.rule == 'release':
            return True
        return bool((self.flops[:len(self)] >= flops).any())

    def entry_threshold(self, code: Sequence[int], resolution: int,
                        flops: float) -> float | None:
        """The lowest accuracy with which this path would enter the board
        (None: any accuracy -- board not full, or already on it)."""
        n = len(self)
        if n < self.num_paths or self.index(code, resolution) is not None:
            return None
        if self.rule == 'paper':
            scores = [float(self.scores[j]) for j in range(n)
                      if flops <= float(self.flops[j])]
            return min(scores) if scores else float('inf')
        k = self._least_competitive(list(range(n)))
        worse = float(self.scores[k])
        return worse if flops <= float(self.flops[k]) else \
            worse + self.release_margin

    def update(self, code: Sequence[int], resolution: int, flops: float,
               score: float) -> int | None:
        """Eq. 3: insert the sampled path if it qualifies; return its slot
        (a refreshed score of a path already on the board counts too)."""
        k = self.index(code, resolution)
        if k is not None:
            self.set_score(k, score)
            return k
        if len(self) < self.num_paths:
            return self.add(code, resolution, flops, score)
        n = len(self)
        if self.rule == 'paper':
            slots = [j for j in range(n) if score >= float(self.scores[j])
                     and flops <= float(self.flops[j])]
            if not slots:
                return None
            k = self._least_competitive(slots)
        else:
            k = self._least_competitive(list(range(n)))
            worse = float(self.scores[k])
            if not ((score >= worse and flops <= float(self.flops[k]))
                    or score > worse + self.release_margin):
                return None
        self._write(k, code, resolution, flops, score)
        return k
