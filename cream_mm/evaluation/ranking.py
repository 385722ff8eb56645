"""Ranking quality of a trained supernet: Kendall's tau between the accuracy
of sampled paths with inherited supernet weights and their accuracy when
trained stand-alone from scratch (the paper's Tab. 1 / Tab. 6 metric, there
on 30 paths of subImageNet).

:func:`rank_correlation` does everything for any search checkpoint of our
configs -- SPOS, Cream, the sandwich rule (KL or alpha-divergence), K-shot
-- through the search protocol only: it samples ``num_paths`` distinct
paths (``model.sampler.reseeded(seed, range).sample()``, deduplicated by
``sampler.key``; the same paths for every supernet of a space with the same
seed, range and sampler options), evaluates each with the inherited weights
(``model.backbone.export(arch)`` + the head; BatchNorm statistics
recalibrated on a few training batches by default), trains each from scratch for a few
iterations on the same training data, evaluates it on the same held-out
images, and returns all numbers plus ``scipy.stats.kendalltau``.
Stand-alone results do not depend on the supernet: a cache file lets two
supernets (e.g. SPOS and Cream) be ranked against the same trained paths.
"""
from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..arch import Arch, parse_arch

BN_MODES = ('recalibrate', 'batch', 'running')


# ------------------------------------------------------------------ model
def load_search_model(config, checkpoint: str | None = None,
                      cfg_options: dict | None = None):
    """Build the search model (Cream, sandwich, K-shot) of a config and load a
    checkpoint (``weights_only``, strict). Returns ``(cfg, model)``."""
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    import cream_mm  # noqa: F401  (registers models)
    from ..engine import safe_load
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        # as mmengine's Runner does: the config's top-level preprocessor
        # (input normalisation) is the model's unless it sets its own
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    if checkpoint:
        ckpt = safe_load(checkpoint, map_location='cpu')
        state = ckpt.get('state_dict', ckpt)
        # the supernet (backbone, head) must fit exactly; search-only parts
        # (board, meta network, sampler) may differ between SPOS and Cream
        res = model.load_state_dict(state, strict=False)
        bad = [k for k in [*res.missing_keys, *res.unexpected_keys]
               if k.startswith(('backbone.', 'head.'))]
        if bad:
            raise KeyError(f'checkpoint {checkpoint!r} does not fit the '
                           f'supernet of the config: {bad[:10]}')
    return cfg, model.eval()


def sample_paths(model, num: int, seed: int = 0,
                 flops_range: Sequence[float | None] | None = None,
                 max_tries: int = 10000) -> list:
    """``num`` distinct paths from a seeded copy of the search's sampler
    (same distribution; ``flops_range`` overrides its range), distinct by
    ``sampler.key``."""
    sampler = model.sampler.reseeded(seed, flops_range)
    seen, paths = set(), []
    for _ in range(max_tries):
        if len(paths) == num:
            break
        arch = sampler.sample()
        key = sampler.key(arch)
        if key not in seen:
            seen.add(key)
            paths.append(arch)
    if len(paths) < num:
        raise ValueError(f'only {len(paths)} distinct paths in range after '
                         f'{max_tries} draws; widen the FLOPs range')
    return paths


class PathClassifier(nn.Module):
    """A path as a stand-alone network: :class:`CreamNet` + the search's
    head, input resized to the path's resolution."""

    def __init__(self, backbone: nn.Module, head: nn.Module,
                 resolution: int | None = None):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.resolution = resolution

    def forward(self, x):
        if self.resolution and x.shape[-1] != self.resolution:
            x = nn.functional.interpolate(
                x, size=(self.resolution, ) * 2, mode='bilinear',
                align_corners=False)
        return self.head(self.backbone(x))


def model_device(model) -> torch.device:
    """The device of the search model's weights (its first parameter)."""
    for p in model.parameters():
        return p.device
    return torch.device('cpu')


def _path_classifier(model, arch) -> PathClassifier:
    """The path with the supernet's weights, built on the host (the
    protocol's ``export`` makes a fresh module and copies the weights in)."""
    child = model.backbone.export(arch)
    return PathClassifier(child, subnet_head(model, arch, child),
                          model.sampler.resolution(arch)).float()


def inherited_network(model, arch) -> PathClassifier:
    """The path with the supernet's weights (a copy): the protocol's
    ``model.backbone.export(arch)`` + the search's head, at the
    resolution ``model.sampler.resolution(arch)`` -- any space -- on the
    supernet's device (it is fed the model's preprocessed batches)."""
    # NHWC: the same computation, ~1.8x faster on x86 CPUs
    return _path_classifier(model, arch).to(
        device=model_device(model), memory_format=torch.channels_last)


def subnet_head(model, arch, child: nn.Module) -> nn.Module:
    """The search head for ``arch`` (a copy): an elastic head (one with
    ``export``, e.g. ``AttentiveDynamicHead``) is sliced to the arch and
    the exported backbone's last width, a fixed head is copied."""
    if hasattr(model.head, 'export'):
        return model.head.export(arch, in_channels=child.out_channels[-1])
    return copy.deepcopy(model.head)


def scratch_network(model, arch: Arch, seed: int) -> PathClassifier:
    """The path freshly initialised (the supernet's init scheme), drawn on
    the host's generator -- the same initial weights on any device -- and
    moved to the supernet's device."""
    torch.manual_seed(seed)
    net = _path_classifier(model, arch).cpu().to(
        memory_format=torch.channels_last)  # init as laid out in memory
    for m in net.modules():  # CreamNet's DEFAULT_INIT and the head's
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out',
                                    nonlinearity='relu')
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _BatchNorm):
            m.reset_parameters()
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)
    return net.to(model_device(model))


# ------------------------------------------------------------- evaluation
def _norm_key(model) -> str:
    """The input normalisation of the model's preprocessor (part of the
    stand-alone cache key: results without it are not comparable)."""
    pre = model.data_preprocessor
    if not getattr(pre, '_enable_normalize', False):
        return 'none'
    return 'mean={} std={}'.format(
        *(','.join(f'{v:g}' for v in getattr(pre, n).flatten().tolist())
          for n in ('mean', 'std')))


def _batch(model, data, training: bool = False):
    out = model.data_preprocessor(data, training)
    labels = torch.cat([s.gt_label for s in out['data_samples']])
    return out['inputs'].float().contiguous(
        memory_format=torch.channels_last), labels


@torch.no_grad()
def recalibrate_bn(net: nn.Module, batches: Sequence[tuple]) -> None:
    """Re-estimate BatchNorm running statistics as exact averages over
    ``batches`` (momentum None), the standard one-shot evaluation step."""
    bns = [m for m in net.modules() if isinstance(m, _BatchNorm)]
    saved = [(m, m.momentum) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    for x, _ in batches:
        net(x)
    for m, mom in saved:
        m.momentum = mom
    net.eval()


@torch.no_grad()
def top1(net: nn.Module, batches: Sequence[tuple], bn: str = 'running'
         ) -> float:
    """Top-1 (%) on ``batches``; ``bn='batch'`` normalises with each
    batch's statistics (as the search's board scoring does)."""
    net.eval()
    bns = [m for m in net.modules() if isinstance(m, _BatchNorm)]
    if bn == 'batch':
        for m in bns:
            m.train()
    correct = total = 0
    saved = [(m, m.running_mean, m.running_var) for m in bns]
    try:
        if bn == 'batch':
            for m in bns:
                m.running_mean = m.running_var = None
        for x, y in batches:
            correct += int((net(x).argmax(1) == y).sum())
            total += len(y)
    finally:
        for m, mean, var in saved:
            m.running_mean, m.running_var = mean, var
        net.eval()
    return 100. * correct / max(total, 1)


def inherited_accuracy(model, arch: Arch, val: Sequence[tuple],
                       calib: Sequence[tuple] = (), bn: str = 'recalibrate'
                       ) -> float:
    """Top-1 of a path with inherited supernet weights."""
    if bn not in BN_MODES:
        raise ValueError(f'bn={bn!r}: allowed {", ".join(BN_MODES)}')
    net = inherited_network(model, arch)
    if bn == 'recalibrate':
        if not calib:
            raise ValueError("bn='recalibrate' needs calibration batches")
        recalibrate_bn(net, calib)
        bn = 'running'
    return top1(net, val, bn)


def train_standalone(model, arch: Arch, train_iter, val: Sequence[tuple],
                     iters: int, lr: float = 0.1, momentum: float = 0.9,
                     weight_decay: float = 4e-5, seed: int = 0,
                     extra_val: dict | None = None) -> dict:
    """Train the path from scratch for ``iters`` SGD steps (cosine lr,
    Nesterov) on batches from ``train_iter`` (callable -> raw batch); top-1
    on ``val`` with the trained BN statistics (and ``top1_<name>`` on each
    set of batches of ``extra_val``, name -> batches)."""
    net = scratch_network(model, arch, seed)
    params = [p for p in net.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    opt = torch.optim.SGD([dict(params=decay, weight_decay=weight_decay),
                           dict(params=no_decay, weight_decay=0.)],
                          lr=lr, momentum=momentum, nesterov=True)
    t0 = time.perf_counter()
    net.train()
    loss = None
    for i in range(iters):
        for group in opt.param_groups:
            group['lr'] = lr * 0.5 * (1 + math.cos(math.pi * i / iters))
        x, y = _batch(model, train_iter(), True)
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    extra = {f'top1_{name}': top1(net, batches, 'running')
             for name, batches in (extra_val or {}).items()}
    return dict(top1=top1(net, val, 'running'), **extra,
                final_loss=float(loss.detach()) if loss is not None else None,
                train_seconds=time.perf_counter() - t0)


# ------------------------------------------------------------------- data
def build_loaders(cfg, val_images: int = 1024, val_split: str | None = None,
                  seed: int = 0):
    """Training loader of the search config (its ``train_dataloader``) and
    a held-out evaluation loader: the config's ``search_val_dataloader``
    with ``indices=val_images`` (a seeded random sample when the config
    wraps it in ``SeededSubset``; ``val_split`` overrides the split)."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    train_cfg = copy.deepcopy(cfg.train_dataloader)
    val_cfg = copy.deepcopy(cfg.get('search_val_dataloader')
                            or cfg.val_dataloader)
    val_cfg['dataset']['indices'] = int(val_images)
    if val_split:  # the split of the dataset a SeededSubset wraps
        from ..datasets.subset import inner_cfg
        inner_cfg(val_cfg['dataset'])['split'] = val_split
    return (Runner.build_dataloader(train_cfg, seed=seed),
            Runner.build_dataloader(val_cfg, seed=seed))


class _Cycle:
    """Endless iterator over a dataloader (a callable)."""

    def __init__(self, loader):
        self.loader, self.it = loader, iter(loader)

    def __call__(self):
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)


# ----------------------------------------------------------------- report
def kendall_tau(xs: Sequence[float], ys: Sequence[float]) -> tuple:
    from scipy.stats import kendalltau
    res = kendalltau(list(xs), list(ys))
    tau = float(res.statistic if hasattr(res, 'statistic') else res[0])
    p = float(res.pvalue if hasattr(res, 'pvalue') else res[1])
    return tau, p


def plot_ranking(rows: list[dict], tau: float, path, title: str = '') -> None:
    """Scatter plot: inherited (supernet) vs stand-alone top-1."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    xs = [r['supernet_top1'] for r in rows]
    ys = [r['standalone_top1'] for r in rows]
    ax.scatter(xs, ys, c=[r['flops'] / 1e6 for r in rows], cmap='viridis')
    for i, (x, y) in enumerate(zip(xs, ys)):
        ax.annotate(str(i), (x, y), fontsize=7, xytext=(3, 3),
                    textcoords='offset points')
    ax.set_xlabel('top-1 with inherited supernet weights (%)')
    ax.set_ylabel('top-1 trained stand-alone (%)')
    ax.set_title(f'{title}  Kendall tau = {tau:.3f}'.strip())
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def path_cost(model, arch) -> float:
    """Cost of a path: the Cream FLOPs table where there is one (the
    numbers of earlier reports), else ``model.sampler.cost``."""
    table = getattr(model, 'table', None)
    return (table.arch_cost(arch) if table is not None
            else float(model.sampler.cost(arch)))


def supernet_label(model) -> str:
    """Short name of the supernet's training: Cream's matching
    (``'none'`` = SPOS), else the algorithm with its KD loss."""
    if getattr(model, 'matching', None) is not None:
        return model.matching
    kd = getattr(model, 'kd_loss', None)
    return type(model).__name__ + (f' ({type(kd).__name__})'
                                   if kd is not None else '')


def _cache_key(arch: str, settings: dict) -> str:
    return json.dumps(dict(arch=arch, **settings), sort_keys=True)


def rank_correlation(config, checkpoint: str, out_dir, num_paths: int = 8,
                     seed: int = 0,
                     flops_range: Sequence[float | None] | None = None,
                     train_iters: int = 200, lr: float = 0.1,
                     val_images: int = 1024, val_split: str | None = None,
                     bn: str = 'recalibrate', calib_batches: int = 10,
                     standalone_cache: str | None = None,
                     cfg_options: dict | None = None, logger=print,
                     name: str = 'ranking') -> dict:
    """Kendall's tau of a supernet checkpoint; writes ``<name>.json`` and
    ``<name>.png`` into ``out_dir`` and returns the JSON's content."""
    cfg, model = load_search_model(config, checkpoint, cfg_options)
    paths = sample_paths(model, num_paths, seed, flops_range)
    train_loader, val_loader = build_loaders(cfg, val_images, val_split,
                                             seed)
    val = [_batch(model, b) for b in val_loader]
    calib = []
    if bn == 'recalibrate':
        it = iter(train_loader)
        calib = [_batch(model, next(it), False)
                 for _ in range(calib_batches)]
    settings = dict(train_iters=train_iters, lr=lr, seed=seed,
                    val_images=val_images, val_split=val_split or '',
                    dataset=str(cfg.train_dataloader.dataset.get('name', '')),
                    batch=int(cfg.train_dataloader.batch_size),
                    norm=_norm_key(model))
    cache: dict = {}
    if standalone_cache and Path(standalone_cache).is_file():
        cache = json.loads(Path(standalone_cache).read_text())
    rows = []
    for i, arch in enumerate(paths):
        text = model.sampler.key(arch)
        flops = path_cost(model, arch)
        sup = inherited_accuracy(model, arch, val, calib, bn)
        key = _cache_key(text, settings)
        if key in cache:
            alone = dict(cache[key], cached=True)
        else:
            torch.manual_seed(seed + i)
            alone = train_standalone(model, arch, _Cycle(train_loader), val,
                                     train_iters, lr, seed=seed + i)
            cache[key] = alone
            if standalone_cache:
                Path(standalone_cache).parent.mkdir(parents=True,
                                                    exist_ok=True)
                Path(standalone_cache).write_text(json.dumps(cache,
                                                             indent=1))
        rows.append(dict(index=i, arch=text, flops=flops,
                         supernet_top1=sup,
                         standalone_top1=alone['top1'],
                         standalone_final_loss=alone.get('final_loss'),
                         standalone_cached=bool(alone.get('cached'))))
        logger(f'[{i + 1}/{len(paths)}] {text}  {flops / 1e6:.2f}M  '
               f'supernet {sup:.2f}  stand-alone {alone["top1"]:.2f}')
    tau, p = kendall_tau([r['supernet_top1'] for r in rows],
                         [r['standalone_top1'] for r in rows])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = dict(config=str(getattr(cfg, 'filename', config)),
                  checkpoint=str(checkpoint),
                  algorithm=type(model).__name__,
                  matching=getattr(model, 'matching', None),
                  num_paths=num_paths,
                  flops_range=list(model.sampler.reseeded(
                      seed, flops_range).flops_range),
                  bn=bn, calib_batches=calib_batches if bn ==
                  'recalibrate' else 0, **settings, rows=rows,
                  kendall_tau=tau, p_value=p,
                  json=str(out / f'{name}.json'),
                  png=str(out / f'{name}.png'))
    (out / f'{name}.json').write_text(json.dumps(result, indent=1))
    plot_ranking(rows, tau, out / f'{name}.png',
                 title=f'{supernet_label(model)} supernet')
    logger(f'Kendall tau = {tau:.4f} (p = {p:.3g}) over {len(rows)} paths; '
           f'wrote {out / (name + ".json")} and {out / (name + ".png")}')
    return result


__all__ = ['rank_correlation', 'load_search_model', 'sample_paths',
           'inherited_accuracy', 'train_standalone', 'recalibrate_bn',
           'top1', 'kendall_tau', 'plot_ranking', 'build_loaders',
           'parse_arch']
