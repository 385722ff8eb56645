"""Path sampling inside a FLOPs range (Alg. 1 lines 1 and 3).

Uniform per layer (single-path one-shot, SPOS [8]) -- optionally with the
release's prior over the MBConv ops and/or fixed depths per stage -- and
conditioned on ``min <= Flops(path) <= max`` by rejection: candidates are
drawn in vectorised batches and costed with the :class:`FlopsTable`, so the
accepted path is an exact draw from the per-layer distribution restricted
to the range. Where that range is a far tail of the distribution (a 14M
model in a space whose typical path has 50M), rejection would take millions
of draws: the sampler then draws layer by layer with each op weighted by
the probability that the remaining layers can still land in the range
(a dynamic programme over a fine histogram of costs), and keeps the
exact-cost check -- the same conditional distribution up to the histogram's
resolution. The generator is a ``torch.Generator`` seeded from the
runner's seed; its state is part of the sampler's ``state_dict`` so every
rank (same seed, same calls) draws the same paths and a resumed search
continues the same sequence.
"""
from __future__ import annotations

import copy
from typing import Mapping, Sequence

import torch
import torch.nn as nn

from ..arch import (MBCONV_OPS, SKIP, Arch, ArchError, format_arch,
                    parse_arch)
from ..models.supernet import SearchSpace
from .flops_table import CostTable
from .rng_state import GeneratorStateMixin

#: the release's prior over (k3e4, k3e6, k5e4, k5e6, k7e4, k7e6), no skip
RELEASE_OP_PRIOR = (0.05, 0.2, 0.05, 0.5, 0.05, 0.15)


class PathSampler(GeneratorStateMixin, nn.Module):
    """Draws paths of a space with ``flops_range[0] <= cost <= [1]``.

    Args:
        space: the search space.
        table: its cost table (defines the cost metric): a
            :class:`~cream_mm.search.flops_table.FlopsTable` or a
            :class:`~cream_mm.search.latency_table.LatencyTable`.
        flops_range: ``(min, max)`` in units of the table's metric (FLOPs,
            or ms for a latency table); ``None`` bounds mean unbounded.
        op_prior: per-op weights; a mapping op -> weight, a sequence over
            the space's ops, or over the six MBConv ops (others get 0,
            e.g. :data:`RELEASE_OP_PRIOR`). ``None``: uniform per layer.
            Skip can never be drawn at a stage's first layer.
        fixed_depths: layers per stage (the release derives depths from the
            FLOPs range): layers below it never skip, layers above it are
            always skip. ``None``: depth follows from skip draws.
        seed: generator seed (the runner's seed).
        chunk: candidates drawn per rejection round.
        max_draws: give up after this many candidates.
    """

    def __init__(self, space: SearchSpace, table: CostTable,
                 flops_range: Sequence[float | None] = (None, None),
                 op_prior=None, fixed_depths: Sequence[int] | None = None,
                 seed: int = 0, chunk: int = 1024, max_draws: int = 1 << 20):
        super().__init__()
        self.space, self.table = space, table
        lo, hi = (list(flops_range) + [None, None])[:2]
        self.flops_range = (float(lo) if lo is not None else 0.,
                            float(hi) if hi is not None else float('inf'))
        if self.flops_range[0] > self.flops_range[1]:
            raise ArchError(f'flops_range={tuple(flops_range)}: min > max')
        self.probs = self._layer_probs(op_prior, fixed_depths)
        self.chunk, self.max_draws = chunk, max_draws
        self.generator = torch.Generator().manual_seed(int(seed))
        self.space_bounds = table.bounds(self.probs > 0)
        self._check_feasible()
        self._build_histograms()

    def _layer_probs(self, op_prior, fixed_depths) -> torch.Tensor:
        ops = self.space.ops
        if op_prior is None:
            w = torch.ones(len(ops), dtype=torch.float64)
        elif isinstance(op_prior, Mapping):
            bad = set(op_prior) - set(ops)
            if bad:
                raise ArchError(f'op_prior: unknown ops {sorted(bad)}; '
                                f'allowed {", ".join(ops)}')
            w = torch.tensor([float(op_prior.get(o, 0.)) for o in ops],
                             dtype=torch.float64)
        else:
            prior = [float(p) for p in op_prior]
            if len(prior) == len(MBCONV_OPS):
                prior = dict(zip(MBCONV_OPS, prior))
                prior = [prior.get(o, 0.) for o in ops]
            if len(prior) != len(ops):
                raise ArchError(
                    f'op_prior has {len(prior)} weights; give one per op of '
                    f'the space ({", ".join(ops)}) or per MBConv op '
                    f'({", ".join(MBCONV_OPS)})')
            w = torch.tensor(prior, dtype=torch.float64)
        if (w < 0).any() or w.sum() <= 0:
            raise ArchError(f'op_prior={op_prior!r}: weights must be >= 0 '
                            'and not all 0')
        if fixed_depths is not None:
            fixed_depths = tuple(int(d) for d in fixed_depths)
            if len(fixed_depths) != len(self.space.max_depths) or any(
                    not 1 <= d <= m
                    for d, m in zip(fixed_depths, self.space.max_depths)):
                raise ArchError(f'fixed_depths={fixed_depths}: one depth '
                                'per stage, 1 <= depth <= max_depths '
                                f'{self.space.max_depths}')
        skip = ops.index(SKIP)
        probs = torch.zeros(self.space.num_layers, len(ops),
                            dtype=torch.float64)
        for l, (s, i, *_) in enumerate(self.space.layers()):
            row = w.clone()
            if fixed_depths is not None:
                if i >= fixed_depths[s - 1]:
                    row = torch.zeros_like(w)
                    row[skip] = 1.
                else:
                    row[skip] = 0.
            if i == 0:
                row[skip] = 0.
            if row.sum() <= 0:
                raise ArchError(f'op_prior={op_prior!r} leaves no op for '
                                f'layer {i} of stage {s}')
            probs[l] = row / row.sum()
        return probs

    def _check_feasible(self):
        lo, hi = self.flops_range
        smin, smax = self.space_bounds
        f = self.table.fmt
        if hi < smin or lo > smax:
            raise ArchError(
                f'flops_range=[{f(lo)}, {f(hi)}] ({self.table.metric}) '
                f'holds no path of space {self.space.name!r} (max_depths '
                f'{self.space.max_depths}, resolutions '
                f'{self.table.resolutions}): its paths span '
                f'[{f(smin)}, {f(smax)}]')

    def draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` unconstrained draws: codes (n, L) and resolution indices."""
        g = self.generator
        codes = torch.multinomial(self.probs, n, replacement=True,
                                  generator=g).T
        res = torch.randint(len(self.table.resolutions), (n, ), generator=g)
        return codes, res

    def _build_histograms(self, bins: int = 1 << 14):
        """Suffix cost distributions ``suffix[r][l]`` (histograms of the cost
        of layers l.. under the per-layer probabilities) and the probability
        of the range per resolution (``self.acceptance``)."""
        table = self.table.table.masked_fill(self.probs[None] == 0, 0.)
        self.bin = max(float(table.max(2).values.sum(1).max()) / bins,
                       self.table.min_bin)
        idx = (table / self.bin).round().long()
        self.suffix, acc = [], []
        for r in range(len(self.table.resolutions)):
            n = int(idx[r].max(1).values.sum()) + 2
            dists = [torch.zeros(n, dtype=torch.float64)]
            dists[0][0] = 1.
            for l in reversed(range(self.space.num_layers)):
                nxt = torch.zeros(n, dtype=torch.float64)
                for o in (self.probs[l] > 0).nonzero().flatten().tolist():
                    k = int(idx[r, l, o])
                    nxt[k:] += self.probs[l, o] * dists[0][:n - k]
                dists.insert(0, nxt)
            self.suffix.append([d.cumsum(0) for d in dists])
            acc.append(self._mass(r, 0, float(self.table.base[r])))
        self.idx = idx
        self.acceptance = sum(acc) / len(acc)

    def _mass(self, r: int, layer: int, spent: float) -> float:
        """P(cost of layers ``layer..`` lands the total in range)."""
        cdf = self.suffix[r][layer]
        lo, hi = self.flops_range

        def at(v):
            b = int(min(max((v - spent) / self.bin, -1), len(cdf) - 1))
            return float(cdf[b]) if b >= 0 else 0.
        return at(hi) - at(lo - self.bin)

    def _sample_conditioned(self) -> tuple[torch.Tensor, int]:
        """Layer by layer, each op weighted by the mass still in range."""
        g = self.generator
        n_res = len(self.table.resolutions)
        w = torch.tensor([self._mass(r, 0, float(self.table.base[r]))
                          for r in range(n_res)], dtype=torch.float64)
        r = int(torch.multinomial(w, 1, generator=g))
        spent, code = float(self.table.base[r]), []
        for l in range(self.space.num_layers):
            ops = (self.probs[l] > 0).nonzero().flatten().tolist()
            wl = torch.zeros(len(self.space.ops), dtype=torch.float64)
            for o in ops:
                wl[o] = self.probs[l, o] * self._mass(
                    r, l + 1, spent + float(self.idx[r, l, o]) * self.bin)
            if wl.sum() <= 0:
                wl[ops] = self.probs[l, ops]
            o = int(torch.multinomial(wl, 1, generator=g))
            code.append(o)
            spent += float(self.idx[r, l, o]) * self.bin
        return torch.tensor([code]), r

    def sample_code(self) -> tuple[tuple[int, ...], int, float]:
        """One path in range: (code, resolution or 0, cost)."""
        lo, hi = self.flops_range
        if self.acceptance < 1e-3:
            for _ in range(1000):
                codes, r = self._sample_conditioned()
                cost = float(self.table.batch_cost(codes,
                                                   torch.tensor([r]))[0])
                if lo <= cost <= hi:
                    size = self.table.resolutions[r]
                    return (tuple(codes[0].tolist()),
                            size if self.space.resolutions else 0, cost)
        chunk = min(self.chunk, max(16, int(8 / max(self.acceptance, 1e-9))))
        for _ in range(max(1, self.max_draws // chunk)):
            codes, res = self.draw(chunk)
            cost = self.table.batch_cost(codes, res)
            ok = ((cost >= lo) & (cost <= hi)).nonzero()
            if len(ok):
                j = int(ok[0])
                size = self.table.resolutions[int(res[j])]
                return (tuple(codes[j].tolist()),
                        size if self.space.resolutions else 0,
                        float(cost[j]))
        f, (smin, smax) = self.table.fmt, self.space_bounds
        raise ArchError(
            f'flops_range=[{f(lo)}, {f(hi)}]: no path in '
            f'{self.max_draws} draws although the space spans '
            f'[{f(smin)}, {f(smax)}];'
            ' widen the range, set fixed_depths or an op_prior')

    def extreme(self, largest: bool = True) -> Arch:
        """The costliest (or cheapest) path the sampler can draw at any
        resolution -- the "largest subnetwork" of fixed matching (Tab. 1
        #3); not limited by ``flops_range``."""
        table = self.table.table.masked_fill(self.probs[None] == 0,
                                             -float('inf') if largest
                                             else float('inf'))
        vals, codes = table.max(2) if largest else table.min(2)
        totals = self.table.base + vals.sum(1)
        r = int(totals.argmax() if largest else totals.argmin())
        size = self.table.resolutions[r] if self.space.resolutions else 0
        return self.space.decode(codes[r].tolist(), size)

    def largest_in_range(self, buckets: int = 1 << 16) -> Arch:
        """The costliest path the sampler can draw with ``min <= cost <=
        max`` -- the "largest subnetwork" of fixed matching (Tab. 1 #3)
        among the paths the search trains.

        A knapsack over the layers: per resolution, a dynamic programme
        keeps for each of ``buckets`` cost bins below ``max`` the largest
        exact partial cost reaching it (and how), which finds a path within
        ``num_layers * max / buckets`` of the best; single-layer swaps
        that stay in range then climb to a local maximum. The returned
        path's exact cost (:meth:`cost`) lies in ``flops_range``."""
        lo, hi = self.flops_range
        if self.space_bounds[1] <= hi:
            return self.extreme(largest=True)
        best, best_cost = None, -float('inf')
        for r in range(len(self.table.resolutions)):
            code = self._knapsack(r, hi, buckets)
            if code is None:
                continue
            code = self._climb(code, r, hi)
            cost = float(self.table.batch_cost(torch.tensor([code]),
                                               torch.tensor([r]))[0])
            if lo <= cost <= hi and cost > best_cost:
                best, best_cost = self._arch(code, r), cost
        if best is None:
            f = self.table.fmt
            raise ArchError(f'flops_range=[{f(lo)}, {f(hi)}]: no path '
                            'in range to distil from')
        return best

    def _knapsack(self, r: int, hi: float, buckets: int) -> list | None:
        """Op per layer of (nearly) the costliest path at resolution ``r``
        with cost <= ``hi``; None when none fits."""
        budget = hi - float(self.table.base[r])
        if budget < 0:
            return None
        table = self.table.table[r].masked_fill(self.probs == 0,
                                                float('inf'))
        width = max(budget / (buckets - 1), 1e-9)
        best = torch.full((buckets, ), -float('inf'), dtype=torch.float64)
        best[0] = 0.
        back = []
        for l in range(self.space.num_layers):
            cand = best[:, None] + table[l][None]  # (bins, ops)
            flat = cand.flatten()
            ok = torch.isfinite(flat) & (flat <= budget)
            idx = ok.nonzero().flatten()
            vals = flat[idx]
            bins = (vals / width).floor().long().clamp_(max=buckets - 1)
            new = torch.full_like(best, -float('inf')).scatter_reduce(
                0, bins, vals, 'amax')
            win = torch.full((buckets, ), -1, dtype=torch.long)
            hit = vals == new[bins]
            win.scatter_reduce_(0, bins[hit], idx[hit], 'amax')
            best, _ = new, back.append(win)
        if not torch.isfinite(best).any():
            return None
        b = int(best.argmax())
        n_ops = len(self.space.ops)
        code = []
        for win in reversed(back):
            j = int(win[b])
            b, op = divmod(j, n_ops)
            code.append(op)
        return code[::-1]

    def _climb(self, code: list, r: int, hi: float) -> list:
        """Single-layer op swaps that raise the exact cost and keep it
        <= ``hi``, until none does."""
        rows, base = self.table._rows[r], self.table._base[r]
        allowed = self._allowed()
        total = base + sum(rows[l][c] for l, c in enumerate(code))
        improved = True
        while improved:
            improved = False
            for l, ops in enumerate(allowed):
                for o in ops:
                    new = total - rows[l][code[l]] + rows[l][o]
                    if total < new <= hi:
                        code[l], total, improved = o, new, True
        return code

    def reseeded(self, seed: int, flops_range=None) -> 'PathSampler':
        """A copy with its own generator (``seed``) and optionally another
        FLOPs range; the same per-layer distribution (ranking, analysis)."""
        new = copy.deepcopy(self)
        new.generator = torch.Generator().manual_seed(int(seed))
        if flops_range is not None:
            lo, hi = (list(flops_range) + [None, None])[:2]
            new.flops_range = (float(lo) if lo is not None else 0.,
                               float(hi) if hi is not None else float('inf'))
            if new.flops_range[0] > new.flops_range[1]:
                raise ArchError(f'flops_range={tuple(flops_range)}: '
                                'min > max')
            new._check_feasible()
            new._build_histograms()
        return new

    def sample(self) -> Arch:
        code, res, _ = self.sample_code()
        return self.space.decode(code, res)

    # ------------------------------------------------ SubnetSampler protocol
    # (cream_mm.search.protocol): what sandwich, K-shot, the evolutions and
    # the ranking tool ask of any space.
    def _code(self, arch) -> tuple[list[int], int]:
        """Arch -> (op index per layer, resolution index)."""
        code, res = self.space.encode(arch)
        return list(code), self.table.res_index(res)

    def _arch(self, code, r: int) -> Arch:
        size = self.table.resolutions[r] if self.space.resolutions else 0
        return self.space.decode(code, size)

    def cost(self, arch) -> float:
        code, r = self._code(arch)
        return float(self.table.batch_cost(torch.tensor([code]),
                                           torch.tensor([r]))[0])

    def mutate(self, arch, prob: float) -> Arch:
        """Each layer (and the resolution) redrawn from the per-layer
        distribution with probability ``prob`` (SPOS / AlphaNet)."""
        code, r = self._code(arch)
        codes, res = self.draw(1)
        flip = torch.rand(len(code) + 1, generator=self.generator) < prob
        new = [int(c) if f else o for o, c, f in zip(code, codes[0], flip)]
        return self._arch(new, int(res[0]) if flip[-1] else r)

    def crossover(self, a, b) -> Arch:
        (ca, ra), (cb, rb) = self._code(a), self._code(b)
        pick = torch.rand(len(ca) + 1, generator=self.generator) < 0.5
        code = [x if p else y for x, y, p in zip(ca, cb, pick)]
        return self._arch(code, ra if pick[-1] else rb)

    def key(self, arch) -> str:
        return format_arch(arch)

    def parse(self, text: str) -> Arch:
        arch = parse_arch(text)
        self.space.encode(arch)  # validates against the space
        return arch

    def resolution(self, arch) -> int | None:
        return parse_arch(arch).resolution

    def _allowed(self) -> list[list[int]]:
        return [(row > 0).nonzero().flatten().tolist() for row in self.probs]

    def genome(self, arch) -> list[int]:
        """Per layer the index among the ops the sampler can draw there,
        then the resolution index."""
        code, r = self._code(arch)
        allowed = self._allowed()
        try:
            genes = [allowed[l].index(c) for l, c in enumerate(code)]
        except ValueError:
            raise ArchError(f'{format_arch(arch)}: uses an op this sampler '
                            'never draws (op_prior / fixed_depths)') from None
        return genes + [r]

    def from_genome(self, genes: Sequence[int]) -> Arch:
        allowed = self._allowed()
        code = [allowed[l][int(g)] for l, g in enumerate(genes[:-1])]
        return self._arch(code, int(genes[-1]))

    def genome_bounds(self) -> tuple[list[int], list[int]]:
        highs = [len(a) - 1 for a in self._allowed()]
        return [0] * (len(highs) + 1), highs + [len(self.table.resolutions)
                                                - 1]

    def encode(self, arch) -> tuple[torch.Tensor, None]:
        """One-hot of the op of every layer (L x |ops|, flattened) and of
        the resolution when it is searched; no channel dimension."""
        code, r = self._code(arch)
        onehot = torch.zeros(len(code), len(self.space.ops))
        onehot[torch.arange(len(code)), torch.tensor(code)] = 1
        parts = [onehot.flatten()]
        if self.space.resolutions:
            parts.append(torch.nn.functional.one_hot(
                torch.tensor(r), len(self.table.resolutions)).float())
        return torch.cat(parts), None

    # The generator is saved as ``rng_state`` (GeneratorStateMixin); a
    # legacy ``_extra_state`` dict is still read, unknown keys reported.
    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        legacy = state_dict.get(prefix + '_extra_state')
        if not self._load_rng_state(state_dict, prefix):
            if isinstance(legacy, dict) and 'generator' in legacy:
                self.generator.set_state(legacy['generator'])
            elif strict:
                missing_keys.append(prefix + 'rng_state')
        # parent class: nothing else to load (no parameters or buffers)
        for k in list(state_dict):
            if k.startswith(prefix) and k[len(prefix):] in (
                    'rng_state', '_extra_state'):
                continue
            if k.startswith(prefix) and strict and '.' not in \
                    k[len(prefix):]:
                unexpected_keys.append(k)
