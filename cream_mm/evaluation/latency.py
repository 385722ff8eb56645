"""CPU latency as in Table 4: batch 1, one thread, warm-up, then N runs.

Each model is timed in its steady state -- ``warmup`` untimed runs, then a
block of timed runs of the same model -- and the models take turns block by
block (rounds), so a background load slows every model alike and ratios
measured side by side in one run stay meaningful on a shared machine.

Why blocks and not single runs in turn: a run that follows another model's
run starts with that model's weights in the caches. Timing single runs in
turn therefore measures cold-cache latency, which penalises the smallest
models most (Cream-14M at 64 px: 4.0 ms interleaved run by run, 3.1 ms in
its steady state; MobileNetV3-small: 6.6 vs 6.2 ms). Table 4, and the
protocol "warm-up then N runs", mean the steady state.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class Timing:
    name: str
    input_size: int
    runs_ms: list

    @property
    def mean(self):
        return statistics.fmean(self.runs_ms)

    @property
    def std(self):
        return statistics.pstdev(self.runs_ms)

    @property
    def median(self):
        return statistics.median(self.runs_ms)


def build_reference(name: str) -> nn.Module:
    """torchvision architectures with random weights (nothing downloaded)."""
    import torchvision.models as tvm
    builders = {'efficientnet_b0': tvm.efficientnet_b0,
                'mobilenet_v3_small': tvm.mobilenet_v3_small,
                'mobilenet_v3_large': tvm.mobilenet_v3_large,
                'mobilenet_v2': tvm.mobilenet_v2}
    if name not in builders:
        raise ValueError(f'reference model {name!r}; allowed: '
                         f'{", ".join(builders)}')
    return builders[name](weights=None)


def build_cream_classifier(arch) -> nn.Module:
    """CreamNet + release head as one eval-mode module."""
    from ..models import CreamClsHead, CreamNet

    class CreamClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone, self.head = CreamNet(arch), CreamClsHead(1000)

        def forward(self, x):
            return self.head(self.backbone(x))

    return CreamClassifier()


def measure(models: dict, sizes: dict, runs: int = 100, warmup: int = 10,
            threads: int = 1, block: int = 20) -> list[Timing]:
    """Time ``models[name](1x3xSxS)``; returns one Timing each (``runs``
    timed runs).

    Rounds: each model in turn does ``warmup`` untimed runs and then up to
    ``block`` timed runs, until every model has ``runs`` timed runs.
    """
    if not models:
        return []
    if runs < 1 or block < 1 or warmup < 0:
        raise ValueError(f'runs={runs}, block={block}, warmup={warmup}: '
                         'runs and block must be >= 1, warmup >= 0')
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        inputs = {n: torch.randn(1, 3, sizes[n], sizes[n]) for n in models}
        for m in models.values():
            m.eval()
        times: dict = {n: [] for n in models}
        with torch.inference_mode():
            while len(times[next(iter(models))]) < runs:
                for n, m in models.items():
                    for _ in range(warmup):
                        m(inputs[n])
                    for _ in range(min(block, runs - len(times[n]))):
                        t0 = time.perf_counter()
                        m(inputs[n])
                        times[n].append((time.perf_counter() - t0) * 1e3)
    finally:
        torch.set_num_threads(old)
    return [Timing(n, sizes[n], times[n]) for n in models]


def _cell(text) -> str:
    """A markdown table cell: ``|`` (arch strings) escaped."""
    return str(text).replace('|', '\\|')


def table(timings: list[Timing], baseline: str | None = None) -> str:
    """Markdown table: mean, std, median (ms) and mean ratio to
    ``baseline`` (default: the first model)."""
    named = {t.name: t for t in timings}
    if baseline is not None and baseline not in named:
        raise ValueError(f'baseline {baseline!r} is not a timed model; '
                         f'choose from {", ".join(named)}')
    base = named[baseline] if baseline is not None else timings[0]
    rows = [f'| model | input | mean ms | std ms | median ms | '
            f'x {_cell(base.name)} |',
            '|---|---|---|---|---|---|']
    for t in timings:
        rows.append(f'| {_cell(t.name)} | {t.input_size} | {t.mean:.2f} | '
                    f'{t.std:.2f} | {t.median:.2f} | '
                    f'{t.mean / base.mean:.2f} |')
    return '\n'.join(rows)
