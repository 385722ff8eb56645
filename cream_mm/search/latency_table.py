"""Per-layer look-up table of measured latency: a hardware-aware Flops(.)
for Eq. 3 and the sampler's range (the latency tables of FBNet,
ProxylessNAS and OFA, on the device and runtime a user deploys with).

In a Cream space the input shape and width of every searched layer are
fixed by its position (:mod:`~cream_mm.search.flops_table`), so a path's
latency is predicted as ``stem + head + sum_l table[res, l, op_l]`` from
steady-state timings of each distinct block (op, widths, stride, input
shape) -- the *plain sum*. Run as one network the blocks interact (the
runtime's per-call overhead, operator fusion, caches), so the table also
holds a *calibration* fitted by least squares on a few measured networks:
``measured ~= a * sum + b * n_layers + c`` (a scale, a per-layer and a
per-network overhead, ms). Both are additive in the layers, so the
calibrated predictor is again a table and every exact bound, histogram
and knapsack of the sampler holds for it.

A table file (JSON, :func:`save_table`) records the conditions it was
measured under (device and its name, runtime, threads, batch size, input
sizes, torch / onnxruntime versions) and the space's geometry. Loading
checks both: a space that differs is always refused; conditions that
differ from the current machine (or from the ones a config expects) are
refused or, with ``on_mismatch='warn'``, warned about -- by field name.
Measuring is :mod:`cream_mm.evaluation.latency_measure`.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch

from ..arch import SKIP
from ..models.complexity import layer_cost, stem_cost
from .flops_table import CostTable

FORMAT = 'cream_mm.latency_table/1'
PREDICTORS = ('calibrated', 'sum')
ON_MISMATCH = ('error', 'warn')
#: fields compared with the current machine (or a config's ``expect``)
CONDITION_FIELDS = ('device', 'device_name', 'runtime', 'threads',
                    'batch_size', 'torch', 'onnxruntime')
#: fields a config may expect (what the user deploys with)
EXPECTABLE = ('device', 'device_name', 'runtime', 'threads', 'batch_size')


def space_signature(space, num_classes: int, head_channels: int,
                    in_channels: int = 3) -> dict:
    """The geometry a table is valid for (JSON types)."""
    return dict(name=space.name, max_depths=list(space.max_depths),
                resolutions=list(space.resolutions or (space.input_size, )),
                stage_channels=list(space.stage_channels),
                stage_strides=list(space.stage_strides),
                num_classes=int(num_classes),
                head_channels=int(head_channels),
                in_channels=int(in_channels))


def stem_key(size: int) -> str:
    return f'stem:{size}'


def head_key(cin: int, hw) -> str:
    return f'head:{cin}:{hw[0]}x{hw[1]}'


def layer_key(op: str, cin: int, cout: int, stride: int, hw) -> str:
    return f'{op}:{cin}:{cout}:{stride}:{hw[0]}x{hw[1]}'


def required_entries(space, in_channels: int = 3) -> list[dict]:
    """Every distinct unit a path of ``space`` can run: the stem (conv,
    BN, act and ``blocks.0``) per resolution, each non-skip op at every
    (widths, stride, input shape) a layer meets, and the tail + head
    (``blocks.6``, pool, ``conv_head``, FC) per resolution. Rows:
    ``dict(key, kind, size, op, cin, cout, stride, hw)``; skip costs 0."""
    rows, seen = [], set()

    def add(row):
        if row['key'] not in seen:
            seen.add(row['key'])
            rows.append(row)
    for size in space.resolutions or (space.input_size, ):
        _, hw = stem_cost((size, size), in_channels)
        add(dict(key=stem_key(size), kind='stem', size=size,
                 cin=in_channels, hw=[size, size]))
        for _, i, cin, cout, stride in space.layers():
            out_hw = hw
            for op in space.layer_ops(i):
                if op == SKIP:
                    continue
                _, out_hw = layer_cost(op, cin, cout, stride, hw)
                add(dict(key=layer_key(op, cin, cout, stride, hw),
                         kind='layer', op=op, cin=cin, cout=cout,
                         stride=stride, hw=list(hw)))
            hw = out_hw
        cin = space.stage_channels[-1]
        add(dict(key=head_key(cin, hw), kind='head', cin=cin, hw=list(hw)))
    return rows


def save_table(data: dict, path) -> None:
    """Write atomically (a killed build leaves the last complete file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def read_table(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f'latency table {str(path)!r} does not exist: build it with '
            'python tools/build_latency_table.py CONFIG --device cpu '
            f'--runtime fused --threads 1 --out {path}')
    data = json.loads(path.read_text())
    if data.get('format') != FORMAT:
        raise ValueError(f'{path}: format={data.get("format")!r}, '
                         f'expected {FORMAT!r} (not a latency table)')
    return data


def mismatches(recorded: dict, current: dict, fields,
               label: str = 'current') -> list[str]:
    """``'field: table X, current Y'`` for every differing field."""
    return [f'{k}: table {recorded.get(k)!r}, {label} {current.get(k)!r}'
            for k in fields if recorded.get(k) != current.get(k)]


def check_table(data: dict, signature: dict | None = None,
                expect: dict | None = None, on_mismatch: str = 'error',
                current: dict | None = None, source: str = 'table') -> None:
    """Refuse a table for another space, an incomplete one, or one
    measured under other conditions than ``expect`` declares (device,
    device_name, runtime, threads, batch_size: what the config deploys
    with), always; a table measured on another machine -- device name,
    torch or onnxruntime version differing from ``current`` (default:
    :func:`~cream_mm.evaluation.latency_measure.current_conditions` for the
    table's device and runtime) -- is refused or, with ``on_mismatch=
    'warn'``, warned about. Every message names each mismatched field."""
    if on_mismatch not in ON_MISMATCH:
        raise ValueError(f'cost.on_mismatch={on_mismatch!r}: allowed '
                         f'{", ".join(map(repr, ON_MISMATCH))}')
    if signature is not None:
        bad = mismatches(data['space'], signature, signature)
        if bad:
            raise ValueError(f'{source} was measured for another space: '
                             + '; '.join(bad))
    if not data.get('complete'):
        raise ValueError(f'{source} is incomplete ({len(data["entries"])} '
                         'entries): rerun tools/build_latency_table.py with '
                         'the same --out to finish it')
    expect = dict(expect or {})
    bad_keys = set(expect) - set(EXPECTABLE)
    if bad_keys:
        raise ValueError(f'cost.expect: unknown fields {sorted(bad_keys)}; '
                         f'allowed {", ".join(EXPECTABLE)}')
    cond = data['conditions']
    if current is None:
        from ..evaluation.latency_measure import current_conditions
        current = current_conditions(cond['device'], cond['runtime'],
                                     cond['threads'], cond['batch_size'],
                                     strict=False)
    declared = mismatches(cond, expect, expect, 'expected')
    if declared:  # what the config says the deployment is: always checked
        raise ValueError(f'{source} was measured under other conditions '
                         'than the config expects: ' + '; '.join(declared))
    machine = [k for k in ('device_name', 'torch', 'onnxruntime')
               if k not in expect]
    bad = mismatches(cond, current, machine)
    if not bad:
        return
    text = (f'{source} was measured under other conditions than this '
            'machine: ' + '; '.join(bad))
    if on_mismatch == 'error':
        raise ValueError(text + " (cost.on_mismatch='warn' to use it "
                         'anyway)')
    warnings.warn(text, stacklevel=2)


#: calibration models: name -> (regressors, networks needed)
CALIBRATIONS = (('none', (), 1), ('per_network', ('one', ), 2),
                ('scale+per_network', ('sum', 'one'), 3),
                ('scale+per_layer+per_network', ('sum', 'layers', 'one'), 4))


def _fit(cols: dict, y: torch.Tensor, names) -> dict | None:
    """Least squares of ``y - sum`` (no scale) or ``y`` on ``names``;
    None if the scale is not > 0 or the per-layer term is < 0."""
    coef = dict(sum=1., layers=0., one=0.)
    if names:
        x = torch.stack([cols[n] for n in names], 1)
        target = y if 'sum' in names else y - cols['sum']
        sol = torch.linalg.lstsq(x, target[:, None],
                                 driver='gelsd').solution.flatten()
        coef.update(zip(names, sol.tolist()))
    if not coef['sum'] > 0 or coef['layers'] < 0:
        return None
    return coef


def _predict(coef: dict, cols: dict) -> torch.Tensor:
    return (coef['sum'] * cols['sum'] + coef['layers'] * cols['layers']
            + coef['one'] * cols['one'])


def fit_calibration(networks: list[dict]) -> dict:
    """Calibrate the plain sum on measured networks (rows with ``sum_ms``,
    ``n_layers``, ``measured_ms``): ``measured ~= scale * sum + per_layer
    * n_layers + per_network`` by least squares, for the nested models of
    :data:`CALIBRATIONS` (none; a per-network offset; + a scale; + a
    per-layer overhead) that the networks determine. The model kept is the
    one of lowest leave-one-out mean absolute error (the plain sum when no
    fit generalises better), so a few noisy networks cannot make the
    calibrated predictor worse than the sum on paths it has not seen;
    ``scale > 0`` and ``per_layer >= 0`` keep every calibrated entry
    non-negative."""
    if not networks:
        raise ValueError('calibration needs at least one measured network')

    def col(key):
        return torch.tensor([float(n[key]) for n in networks],
                            dtype=torch.float64)
    y = col('measured_ms')
    cols = dict(sum=col('sum_ms'), layers=col('n_layers'),
                one=torch.ones(len(networks), dtype=torch.float64))
    best = None
    for name, names, need in CALIBRATIONS:
        if len(networks) < need:
            continue
        coef = _fit(cols, y, names)
        if coef is None:
            continue
        errs = []
        for i in range(len(networks)):
            keep = [j for j in range(len(networks)) if j != i]
            sub = {k: v[keep] for k, v in cols.items()}
            c = _fit(sub, y[keep], names) if names else coef
            if c is None:
                break
            one = {k: v[i:i + 1] for k, v in cols.items()}
            errs.append(float((_predict(c, one) - y[i]).abs()))
        else:
            loo = sum(errs) / len(errs)
            if best is None or loo < best[0] - 1e-12:
                best = (loo, name, coef)
    loo, name, coef = best
    fit = dict(model=name, scale=coef['sum'], per_layer_ms=coef['layers'],
               per_network_ms=coef['one'], loo_mae_ms=loo,
               fit_mae_ms=float((_predict(coef, cols) - y).abs().mean()))
    fit['networks'] = networks
    return fit


class LatencyTable(CostTable):
    """Predicted latency (ms) of every (resolution, layer, op) of a space.

    Args:
        data: a table file's content (:func:`read_table`).
        space: the search space (must match the table's).
        num_classes, head_channels, in_channels: the classifier measured.
        predictor: ``'calibrated'`` (default; the fitted overheads) or
            ``'sum'`` (plain sum of the measured units).
        expect, on_mismatch: see :func:`check_table`.
        current: conditions to compare with (default: this machine).
    """
    metric = 'latency'
    unit = 'ms'
    scale = 1.
    log_key = 'latency_ms'
    min_bin = 1e-6

    def __init__(self, data: dict, space, num_classes: int,
                 head_channels: int, in_channels: int = 3,
                 predictor: str = 'calibrated', expect: dict | None = None,
                 on_mismatch: str = 'error', current: dict | None = None,
                 source: str = 'latency table'):
        if predictor not in PREDICTORS:
            raise ValueError(f'cost.predictor={predictor!r}: allowed '
                             f'{", ".join(map(repr, PREDICTORS))}')
        check_table(data, space_signature(space, num_classes, head_channels,
                                          in_channels),
                    expect, on_mismatch, current, source)
        calib = data.get('calibration')
        if predictor == 'calibrated' and not calib:
            raise ValueError(f"{source} has no calibration: rebuild with "
                             "--calib N (N >= 3) or set cost.predictor="
                             "'sum'")
        self.space, self.data, self.predictor = space, data, predictor
        self.conditions = dict(data['conditions'])
        cond = self.conditions
        self.axis_label = (f"latency (ms, {cond['runtime']} on "
                           f"{cond['device_name']}, {cond['threads']} "
                           f"thread(s), batch {cond['batch_size']})")
        self.resolutions = tuple(space.resolutions or (space.input_size, ))
        a, b, c = ((calib['scale'], calib['per_layer_ms'],
                    calib['per_network_ms']) if predictor == 'calibrated'
                   else (1., 0., 0.))
        self.sum_table, self.sum_base = self._assemble(data['entries'],
                                                       in_channels)
        skip = space.ops.index(SKIP)
        self.table = self.sum_table * a + b
        self.table[:, :, skip] = self.sum_table[:, :, skip]  # 0 or inf
        self.base = self.sum_base * a + c
        self._finish()
        lo, hi = self.bounds()
        self.pareto_step = max((hi - lo) / 50., 1e-3)

    def _assemble(self, entries: dict, in_channels: int):
        space = self.space
        n_res = len(self.resolutions)
        table = torch.full((n_res, space.num_layers, len(space.ops)),
                           float('inf'), dtype=torch.float64)
        base = torch.zeros(n_res, dtype=torch.float64)

        def get(key):
            if key not in entries:
                raise ValueError(f'latency table lacks entry {key!r}')
            return float(entries[key])
        for r, size in enumerate(self.resolutions):
            _, hw = stem_cost((size, size), in_channels)
            total = get(stem_key(size))
            for l, (_, i, cin, cout, stride) in enumerate(space.layers()):
                out_hw = hw
                for op in space.layer_ops(i):
                    if op == SKIP:
                        table[r, l, space.ops.index(op)] = 0.
                        continue
                    _, out_hw = layer_cost(op, cin, cout, stride, hw)
                    table[r, l, space.ops.index(op)] = get(
                        layer_key(op, cin, cout, stride, hw))
                hw = out_hw
            base[r] = total + get(head_key(space.stage_channels[-1], hw))
        return table, base

    @classmethod
    def load(cls, path, space, num_classes: int, head_channels: int,
             **kwargs) -> 'LatencyTable':
        return cls(read_table(path), space, num_classes, head_channels,
                   source=f'latency table {str(path)!r}', **kwargs)

    def fmt(self, value: float) -> str:
        return f'{value:.3f}ms'

    def digest(self) -> bytes:
        """SHA-1 of what the costs are made of (entries, calibration,
        predictor): a resumed search checks it is the same table."""
        import hashlib
        body = dict(entries=self.data['entries'], predictor=self.predictor,
                    calibration=(self.data.get('calibration') or {}))
        body['calibration'] = {k: v for k, v in body['calibration'].items()
                               if k != 'networks'}
        return hashlib.sha1(json.dumps(body, sort_keys=True).encode()
                            ).digest()

    def sum_cost(self, arch) -> float:
        """The plain sum of measured units (no calibration), ms."""
        code, res = self.space.encode(arch)
        r = self.res_index(res)
        rows = self.sum_table[r]
        return float(self.sum_base[r]) + sum(float(rows[l, c])
                                             for l, c in enumerate(code))

    def summary(self, arch) -> dict:
        c = self.conditions
        return dict(latency_ms=self.arch_cost(arch),
                    latency_sum_ms=self.sum_cost(arch),
                    latency_predictor=self.predictor,
                    latency_conditions=dict(c))

    def header(self, arch) -> str:
        """A comment line of the exported configs."""
        c = self.conditions
        return (f"# {self.arch_cost(arch):.3f} ms predicted ({self.predictor}"
                f" latency table: {c['runtime']} on {c['device_name']}, "
                f"{c['threads']} thread(s), batch {c['batch_size']})\n")


def count_layers(space, arch) -> int:
    """Non-skip searched layers of a path (the calibration's regressor)."""
    code, _ = space.encode(arch)
    skip = space.ops.index(SKIP)
    return sum(1 for c in code if c != skip)


__all__ = ['LatencyTable', 'FORMAT', 'PREDICTORS', 'ON_MISMATCH',
           'check_table', 'fit_calibration', 'read_table', 'save_table',
           'required_entries', 'space_signature', 'count_layers']
