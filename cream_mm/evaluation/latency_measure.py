"""Measuring a latency table (:mod:`cream_mm.search.latency_table`).

Every unit -- stem, each distinct searched block, tail + head -- and every
calibration network is timed in its steady state: ``warmup`` untimed runs,
then ``repeats`` timed runs, the median kept (the protocol of
:mod:`cream_mm.evaluation.latency`). Runtimes:

* ``eager``: the PyTorch module in eval mode under ``inference_mode``;
* ``fused``: the inference form of :func:`~cream_mm.models.fuse.
  optimize_for_cpu` (BatchNorm folded, TorchScript trace + freeze);
* ``onnxrt``: the module exported to ONNX (opset 17) and run by an
  ONNX Runtime session (``intra_op_num_threads = threads``);

on ``device='cpu'`` (``torch.set_num_threads(threads)``) or ``'cuda'``
(eager / fused; each timed run ends with ``torch.cuda.synchronize()``).
Inputs are ``batch_size x C x H x W`` random tensors.
"""
from __future__ import annotations

import io
import platform
import statistics
import time
from importlib.metadata import PackageNotFoundError, version

import torch
import torch.nn as nn

from ..arch import parse_arch
from ..models.blocks import DEFAULT_ACT, DEFAULT_NORM, build_op
from ..models.cream_net import TAIL_CHANNELS, CreamNet
from ..models.fuse import optimize_for_cpu
from ..models.heads import CreamClsHead

RUNTIMES = ('eager', 'fused', 'onnxrt')
#: untimed runs of a frozen TorchScript module before its warm-up (the
#: profiling executor optimises the graph during its first runs)
JIT_PROFILING_RUNS = 3
DEVICES = ('cpu', 'cuda')


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeError("runtime='onnxrt' needs the package onnxruntime, "
                           'which is not importable here: pip install '
                           'onnxruntime (or onnxruntime-gpu)') from None
    return onnxruntime


def check_runtime(device: str, runtime: str) -> None:
    """One clear error for an unknown or unavailable device / runtime."""
    if device not in DEVICES:
        raise ValueError(f'device={device!r}: allowed '
                         f'{", ".join(map(repr, DEVICES))}')
    if runtime not in RUNTIMES:
        raise ValueError(f'runtime={runtime!r}: allowed '
                         f'{", ".join(map(repr, RUNTIMES))}')
    if device == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError("device='cuda': no CUDA device is available "
                           "here (torch.cuda.is_available() is False); "
                           "measure on the GPU machine or use device='cpu'")
    if runtime == 'onnxrt':
        ort = _onnxruntime()
        if device == 'cuda' and 'CUDAExecutionProvider' not in \
                ort.get_available_providers():
            raise RuntimeError("runtime='onnxrt' on device='cuda' needs "
                               "onnxruntime's CUDAExecutionProvider "
                               '(onnxruntime-gpu); available: '
                               f'{ort.get_available_providers()}')


def device_name(device: str) -> str | None:
    """The CPU model (``/proc/cpuinfo``) or the GPU name; None if absent."""
    if device == 'cuda':
        return (torch.cuda.get_device_name(0)
                if torch.cuda.is_available() else None)
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def current_conditions(device: str, runtime: str, threads: int,
                       batch_size: int = 1, strict: bool = True) -> dict:
    """What a table built here now would record (``strict``: the device
    and runtime must be available)."""
    if strict:
        check_runtime(device, runtime)
    ort = None
    if runtime == 'onnxrt':
        ort = _version('onnxruntime') or _version('onnxruntime-gpu')
    return dict(device=device, device_name=device_name(device),
                runtime=runtime, threads=int(threads),
                batch_size=int(batch_size), torch=torch.__version__,
                onnxruntime=ort)


# ------------------------------------------------------------- the units
class _Stem(nn.Module):
    """conv_stem, bn1, act1 and ``blocks.0`` of a CreamNet."""
    conv_bn_pairs = (('conv_stem', 'bn1'), )

    def __init__(self, net: CreamNet):
        super().__init__()
        self.conv_stem, self.bn1, self.act1 = net.conv_stem, net.bn1, net.act1
        self.ds = net.blocks[0]

    def forward(self, x):
        return self.ds(self.act1(self.bn1(self.conv_stem(x))))


class _TailHead(nn.Module):
    """``blocks.6`` then the classifier head (pool, conv_head, FC)."""

    def __init__(self, tail: nn.Module, head: nn.Module):
        super().__init__()
        self.tail, self.head = tail, head

    def forward(self, x):
        return self.head((self.tail(x), ))


class Classifier(nn.Module):
    """A CreamNet with its head, as one module (end-to-end timing)."""

    def __init__(self, backbone: CreamNet, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x):
        return self.head(self.backbone(x))


def _net(sig: dict, arch) -> CreamNet:
    return CreamNet(arch, in_channels=sig['in_channels'],
                    stage_channels=tuple(sig['stage_channels']),
                    stage_strides=tuple(sig['stage_strides']))


def _head(sig: dict) -> nn.Module:
    return CreamClsHead(sig['num_classes'], in_channels=TAIL_CHANNELS,
                        head_channels=sig['head_channels'], dropout=0.)


def _smallest_arch(sig: dict) -> str:
    return '|'.join(['k3e4'] * len(sig['max_depths']))


def unit_module(sig: dict, row: dict) -> tuple[nn.Module, tuple]:
    """The module and input shape (without batch) of a table entry."""
    h, w = row['hw']
    if row['kind'] == 'layer':
        mod = build_op(row['op'], row['cin'], row['cout'], row['stride'],
                       norm_cfg=DEFAULT_NORM, act_cfg=DEFAULT_ACT)
        return mod, (row['cin'], h, w)
    net = _net(sig, _smallest_arch(sig))
    if row['kind'] == 'stem':
        return _Stem(net), (sig['in_channels'], h, w)
    return _TailHead(net.blocks[-1], _head(sig)), (row['cin'], h, w)


def network_module(sig: dict, arch) -> nn.Module:
    """The exported classifier of a path (random weights)."""
    return Classifier(_net(sig, parse_arch(arch)), _head(sig))


# ---------------------------------------------------------------- timing
def prepare(module: nn.Module, shape: tuple, device: str, runtime: str,
            threads: int, batch_size: int = 1):
    """A no-argument callable running ``module`` once in the runtime."""
    module = module.eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, *shape, generator=gen)
    if runtime == 'onnxrt':
        ort = _onnxruntime()
        buf = io.BytesIO()
        torch.onnx.export(module, (x, ), buf, dynamo=False, opset_version=17,
                          input_names=['input'])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        providers = (['CUDAExecutionProvider'] if device == 'cuda'
                     else ['CPUExecutionProvider'])
        sess = ort.InferenceSession(buf.getvalue(), opts,
                                    providers=providers)
        feed = {'input': x.numpy()}
        return lambda: sess.run(None, feed)
    module, x = module.to(device), x.to(device)
    if runtime == 'fused':
        module = optimize_for_cpu(module, x)

    def run():
        with torch.inference_mode():
            module(x)
    if runtime == 'fused':  # TorchScript's profiling runs specialise the
        for _ in range(JIT_PROFILING_RUNS):  # graph: not steady state
            run()
    return run


def time_fn(fn, warmup: int, repeats: int, sync: bool = False) -> float:
    """Median of ``repeats`` timed runs after ``warmup`` untimed ones (ms);
    ``sync``: CUDA-synchronised before the clock starts and stops."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f'repeats={repeats}, warmup={warmup}: repeats >= 1'
                         ', warmup >= 0')
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def measure(module: nn.Module, shape: tuple, cond: dict, warmup: int,
            repeats: int) -> float:
    """Steady-state median latency (ms) of ``module`` under ``cond``."""
    old = torch.get_num_threads()
    torch.set_num_threads(int(cond['threads']))
    try:
        fn = prepare(module, shape, cond['device'], cond['runtime'],
                     cond['threads'], cond['batch_size'])
        return time_fn(fn, warmup, repeats, sync=cond['device'] == 'cuda')
    finally:
        torch.set_num_threads(old)


def measure_network(sig: dict, arch, cond: dict, warmup: int,
                    repeats: int) -> float:
    """End-to-end latency (ms) of the exported classifier of ``arch``."""
    arch = parse_arch(arch)
    size = arch.resolution or sig['resolutions'][0]
    return measure(network_module(sig, arch), (sig['in_channels'], size,
                                               size), cond, warmup, repeats)


__all__ = ['RUNTIMES', 'DEVICES', 'check_runtime', 'current_conditions',
           'device_name', 'unit_module', 'network_module', 'prepare',
           'time_fn', 'measure', 'measure_network']
