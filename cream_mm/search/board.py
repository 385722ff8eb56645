"""The prioritized path board B = {alpha_k}_{k=1..K} (§3.1, Eq. 3).

The board is host-side bookkeeping: K encoded paths with their resolutions,
FLOPs and scores, kept in plain Python lists. It is an ``nn.Module`` only
for its place in the search model's ``state_dict`` (entries ``codes``,
``resolutions``, ``flops``, ``scores``, ``size`` -- CPU tensors written by
:meth:`PathBoard._save_to_state_dict` and read back by
:meth:`PathBoard._load_from_state_dict`), so it is saved in every
checkpoint and restored on resume. It has no parameters or buffers:
``model.to(device)`` leaves it on the host, where every read of the search
(~100 per step: thresholds, comparisons, the best path) costs no device
round trip. Every rank applies the same updates with all-reduced scores, so
boards stay identical; :meth:`PathBoard.broadcast_host_state` copies rank
``src``'s.

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

import math
from typing import Sequence

import torch
import torch.nn as nn

RULES = ('paper', 'release')
#: state-dict entries of the board (the names of the former buffers)
STATE_KEYS = ('codes', 'resolutions', 'flops', 'scores', 'size')
UNSCORED = -math.inf


class PathBoard(nn.Module):
    """K prioritized paths with FLOPs and scores (Eq. 3), on the host.

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
        self._k, self.num_layers = int(num_paths), int(num_layers)
        self._set_state([(-1, ) * self.num_layers] * self._k, [0] * self._k,
                        [0.] * self._k, [UNSCORED] * self._k, 0)

    def _set_state(self, codes, resolutions, flops, scores, size) -> None:
        self.codes: list[tuple[int, ...]] = [tuple(map(int, c))
                                             for c in codes]
        self.resolutions: list[int] = [int(r) for r in resolutions]
        self.flops: list[float] = [float(f) for f in flops]
        self.scores: list[float] = [float(s) for s in scores]
        self.size = int(size)

    @property
    def num_paths(self) -> int:
        return self._k

    def __len__(self) -> int:
        return self.size

    # ------------------------------------------------------------ state
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The board as CPU tensors (the state-dict entries)."""
        return dict(
            codes=torch.tensor(self.codes, dtype=torch.long).reshape(
                self._k, self.num_layers),
            resolutions=torch.tensor(self.resolutions, dtype=torch.long),
            flops=torch.tensor(self.flops, dtype=torch.float64),
            scores=torch.tensor(self.scores, dtype=torch.float64),
            size=torch.tensor(self.size, dtype=torch.long))

    def load_state_tensors(self, state: dict) -> None:
        """Set the board from :meth:`state_tensors` (any device)."""
        s = {k: torch.as_tensor(v).detach().to('cpu') for k, v in
             state.items()}
        self._set_state(s['codes'].tolist(), s['resolutions'].tolist(),
                        s['flops'].double().tolist(),
                        s['scores'].double().tolist(), int(s['size']))

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for k, v in self.state_tensors().items():
            destination[prefix + k] = v

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        # no parameters or buffers: the parent class has nothing to load
        mine = self.state_tensors()
        found = {}
        for k, ref in mine.items():
            key = prefix + k
            if key not in state_dict:
                missing_keys.append(key)
                continue
            v = state_dict[key]
            if tuple(v.shape) != tuple(ref.shape):
                error_msgs.append(
                    f'size mismatch for {key}: copying a param with shape '
                    f'{tuple(v.shape)} from checkpoint, the shape in current '
                    f'model is {tuple(ref.shape)} (board num_paths / '
                    'num_layers differ)')
                continue
            found[k] = v
        if strict:
            for key in state_dict:
                if key.startswith(prefix) and \
                        key[len(prefix):].split('.', 1)[0] not in mine:
                    unexpected_keys.append(key)
        if len(found) == len(mine):
            self.load_state_tensors(found)

    def broadcast_host_state(self, src: int = 0) -> None:
        """Copy rank ``src``'s board to every rank (mmengine's broadcast
        moves the host tensors to the backend's device and back)."""
        from mmengine import dist
        state = self.state_tensors()
        for t in state.values():
            dist.broadcast(t, src)
        self.load_state_tensors(state)

    # ------------------------------------------------------------ paths
    def add(self, code: Sequence[int], resolution: int, flops: float,
            score: float = UNSCORED) -> int:
        """Append a path while the board is not full (initialisation)."""
        n = len(self)
        if n >= self.num_paths:
            raise ValueError('board is full')
        self._write(n, code, resolution, flops, score)
        self.size += 1
        return n

    def _write(self, k, code, resolution, flops, score):
        code = tuple(int(c) for c in code)
        if len(code) != self.num_layers:
            raise ValueError(f'board: a path of {len(code)} layers, the '
                             f'board holds {self.num_layers}')
        self.codes[k] = code
        self.resolutions[k] = int(resolution)
        self.flops[k] = float(flops)
        self.scores[k] = float(score)

    def index(self, code: Sequence[int], resolution: int = 0) -> int | None:
        """Board slot of a path, or None."""
        key = (tuple(int(c) for c in code), int(resolution))
        for k in range(len(self)):
            if (self.codes[k], self.resolutions[k]) == key:
                return k
        return None

    def entry(self, k: int) -> tuple[tuple[int, ...], int, float, float]:
        return (self.codes[k], self.resolutions[k], self.flops[k],
                self.scores[k])

    def entries(self) -> list[tuple[tuple[int, ...], int, float, float]]:
        return [self.entry(k) for k in range(len(self))]

    def set_score(self, k: int, score: float) -> None:
        self.scores[k] = float(score)

    def unscored(self) -> list[int]:
        return [k for k in range(len(self)) if self.scores[k] == UNSCORED]

    def best(self) -> int:
        """Slot of the highest score (ties: fewer FLOPs)."""
        order = sorted(range(len(self)),
                       key=lambda k: (-self.scores[k], self.flops[k]))
        return order[0]

    def _least_competitive(self, slots: list[int]) -> int:
        return min(slots, key=lambda k: (self.scores[k], -self.flops[k]))

    def could_replace(self, flops: float) -> bool:
        """Whether a path of these FLOPs can enter under some accuracy
        (exact pre-screen: skip scoring when it cannot)."""
        if len(self) < self.num_paths or self.rule == 'release':
            return True
        return any(f >= flops for f in self.flops[:len(self)])

    def entry_threshold(self, code: Sequence[int], resolution: int,
                        flops: float) -> float | None:
        """The lowest accuracy with which this path would enter the board
        (None: any accuracy -- board not full, or already on it)."""
        n = len(self)
        if n < self.num_paths or self.index(code, resolution) is not None:
            return None
        if self.rule == 'paper':
            scores = [self.scores[j] for j in range(n)
                      if flops <= self.flops[j]]
            return min(scores) if scores else math.inf
        k = self._least_competitive(list(range(n)))
        worse = self.scores[k]
        return worse if flops <= self.flops[k] else \
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
            slots = [j for j in range(n) if score >= self.scores[j]
                     and flops <= self.flops[j]]
            if not slots:
                return None
            k = self._least_competitive(slots)
        else:
            k = self._least_competitive(list(range(n)))
            worse = self.scores[k]
            if not ((score >= worse and flops <= self.flops[k])
                    or score > worse + self.release_margin):
                return None
        self._write(k, code, resolution, flops, score)
        return k
