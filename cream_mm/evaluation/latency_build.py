"""Building a latency table file, resumably
(``tools/build_latency_table.py``).

1. every unit of :func:`~cream_mm.search.latency_table.required_entries`
   is timed (:func:`~cream_mm.evaluation.latency_measure.measure`) and
   written to the file at once (atomic replace), so a killed build
   continues with the entries it lacks;
2. ``calib`` networks -- the cheapest and the costliest path, then random
   paths of a seeded :class:`~cream_mm.search.sampler.PathSampler` (the
   same list on every resume) -- are timed end to end and the calibration
   of :func:`~cream_mm.search.latency_table.fit_calibration` is fitted.

A file under ``out`` measured under other conditions, for another space or
with other measuring settings is refused, by field.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..arch import format_arch
from ..search.latency_table import (CONDITION_FIELDS, FORMAT, LatencyTable,
                                    count_layers, fit_calibration,
                                    mismatches, read_table,
                                    required_entries, save_table,
                                    space_signature)
from .latency_measure import (current_conditions, measure, measure_network,
                              unit_module)


#: whole networks timed to calibrate a table (docs/latency.md: 10 left
#: the ONNX Runtime predictor at 88-93 % within 10 %, 40 at 91-93 %)
DEFAULT_CALIB = 30


def calibration_archs(space, n: int, seed: int) -> list[str]:
    """``n`` distinct paths: cheapest and costliest by FLOPs, then random."""
    from ..search.flops_table import FlopsTable
    from ..search.sampler import PathSampler
    if n <= 0:
        return []
    sampler = PathSampler(space, FlopsTable(space), seed=seed)
    archs = [format_arch(sampler.extreme(False)),
             format_arch(sampler.extreme(True))][:n]
    for _ in range(100 * n):
        if len(archs) >= n:
            break
        a = format_arch(sampler.sample())
        if a not in archs:
            archs.append(a)
    return archs


def build_table(space, num_classes: int, head_channels: int, out,
                device: str = 'cpu', runtime: str = 'fused',
                threads: int = 1, batch_size: int = 1, warmup: int = 10,
                repeats: int = 50, calib: int = DEFAULT_CALIB, seed: int = 0,
                in_channels: int = 3, log=print) -> dict:
    """Measure (or finish measuring) the table of ``space`` into ``out``;
    returns the table's data."""
    cond = current_conditions(device, runtime, threads, batch_size)
    sig = space_signature(space, num_classes, head_channels, in_channels)
    settings = dict(warmup=int(warmup), repeats=int(repeats),
                    calib=int(calib), seed=int(seed))
    out = Path(out)
    if out.exists():
        data = read_table(out)
        bad = (mismatches(data['conditions'], cond, CONDITION_FIELDS)
               + mismatches(data['space'], sig, sig)
               + mismatches(data['measure'], settings, settings))
        if bad:
            raise ValueError(f'--out {str(out)!r} holds a table built '
                             'under other conditions: ' + '; '.join(bad)
                             + ' (choose another --out, or delete it)')
        log(f'resuming {out}: {len(data["entries"])} entries present')
    else:
        data = dict(format=FORMAT, conditions=cond, space=sig,
                    measure=settings, entries={}, calib_networks=[],
                    calibration=None, complete=False, build_seconds=0.)
    rows = required_entries(space, in_channels)
    todo = [r for r in rows if r['key'] not in data['entries']]
    archs = calibration_archs(space, calib, seed)
    done = {n['arch'] for n in data['calib_networks']}
    total = len(rows) + len(archs)
    k = total - len(todo) - len([a for a in archs if a not in done])
    t0 = time.perf_counter()
    for row in todo:
        mod, shape = unit_module(sig, row)
        ms = measure(mod, shape, cond, warmup, repeats)
        data['entries'][row['key']] = ms
        k += 1
        data['build_seconds'] += time.perf_counter() - t0
        t0 = time.perf_counter()
        save_table(data, out)
        log(f'[{k}/{total}] {row["key"]}: {ms:.4f} ms')
    plain = LatencyTable(dict(data, complete=True), space, num_classes,
                         head_channels, in_channels, predictor='sum',
                         current=cond)
    for arch in archs:
        if arch in done:
            continue
        ms = measure_network(sig, arch, cond, warmup, repeats)
        data['calib_networks'].append(dict(
            arch=arch, measured_ms=ms, sum_ms=plain.arch_cost(arch),
            n_layers=count_layers(space, arch)))
        k += 1
        data['build_seconds'] += time.perf_counter() - t0
        t0 = time.perf_counter()
        save_table(data, out)
        log(f'[{k}/{total}] network {arch}: {ms:.4f} ms measured, '
            f'{plain.arch_cost(arch):.4f} ms plain sum')
    if data['calib_networks']:
        data['calibration'] = fit_calibration(data['calib_networks'])
    data['complete'] = True
    data['build_seconds'] += time.perf_counter() - t0
    save_table(data, out)
    cal = data['calibration']
    log(f'table complete: {len(data["entries"])} entries, '
        f'{len(data["calib_networks"])} calibration networks'
        + (f", calibration {cal['model']} (scale {cal['scale']:.3f}, "
           f"per layer {cal['per_layer_ms']:.4f} ms, per network "
           f"{cal['per_network_ms']:.4f} ms, fit MAE "
           f"{cal['fit_mae_ms']:.4f} ms)" if cal else '')
        + f'; {data["build_seconds"]:.1f} s of building -> {out}')
    return data


__all__ = ['build_table', 'calibration_archs']
