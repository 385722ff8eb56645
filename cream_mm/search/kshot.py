"""K-shot NAS (Su et al., ICML 2021) as an mmengine ``BaseModel``: K-shot
supernets (:class:`~cream_mm.models.kshot.KShotSupernet`) and the
simplex-net trained in alternation (Alg. 1 of the paper).

``train_step`` is one iteration:

1. supernet step (Eq. 9): sample a path ``a`` in the FLOPs range, take
   lambda = pi(a) from the simplex-net detached (1/K during warm-up), CE on
   the batch through the merged weights ``sum_k lambda_k theta_k``, update
   the K copies of the path's searched weights, the shared stem/tail and the
   head;
2. every ``simplex.interval`` iterations after warm-up, a simplex step
   (Eq. 8 / Eq. 17): sample ``m`` paths (with a channel encoding: ``m/g``
   architectures with ``g`` widths each, so that r_c has pairs), split the
   batch into ``m`` groups of ``b/m`` images, loss = mean CE of each group
   through its path's merged weights, gradient into the simplex-net only
   (the K copies are detached), + ``alpha * r_c`` (Eq. 15-16); update the
   simplex-net only. BatchNorm runs on batch statistics in this step and its
   running statistics are left alone (the supernet step owns them).

Distributed: every rank draws the same paths (the sampler's generator is
in the checkpoint), gradients of both steps and the running BN statistics
the supernet step updated are averaged over ranks.
"""
from __future__ import annotations

import copy
from collections import deque
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import is_model_wrapper
from mmengine.optim import (DefaultOptimWrapperConstructor, OptimWrapper,
                            OptimWrapperDict)
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmpretrain.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from ..models.kshot import KShotSupernet
from ..models.simplex_net import channel_regulariser
from .base import (BNRecalibratedScoring, SupernetAlgorithm,
                   WarmupSchedule, bn_counters, sampler_kwargs)
from .optim import SHARED_KEYS, apply_shared
from .precision import check_lr, finite_on_every_rank, scaled
from .runtime import (GradMeanHooks, all_reduce_mean, bn_batch_stats,
                      distributed)
from .samplers import build_sampler


@MODELS.register_module()
class KShotSearch(WarmupSchedule, BNRecalibratedScoring, SupernetAlgorithm):
    """K-shot supernets + simplex-net, trained by the paper's Alg. 1.

    Args:
        supernet (dict): a :class:`KShotSupernet` config (its ``supernet``
            is the base space, ``num_shots`` K).
        head (dict): classification head config.
        flops_range, flops_metric: range of sampled paths (the sampler's).
        sampler (dict): sampler options; ``seed`` defaults to the runner's.
        warmup (dict): ``iters`` and/or ``epochs`` with lambda = 1/K (the
            paper: 5 epochs).
        simplex (dict): ``interval`` (iterations between simplex steps,
            1 = strict alternation), ``paths`` (m, paper 16),
            ``widths_per_arch`` (g: paths per architecture when widths are
            searched; 1 = independent draws), ``reg_weight`` (alpha of
            Eq. 17, paper 1), ``temperature`` (tau of Eq. 15, paper 0.3),
            ``threshold`` (m of Eq. 15 in the l1 width distance; not stated
            in the paper, not checked against public code; None = the
            median pairwise distance of each group).
        recalibrate_bn: :meth:`val_top1` exports the subnet (merged
            weights) and re-estimates its BN statistics on ``calib_batches``
            training batches first (AttentiveNAS / AlphaNet); otherwise BN
            uses each held-out batch's statistics.
        calib_batches: batches for the re-calibration (the search hook
            attaches them, :meth:`attach_calib`).
        label_smoothing: of the supernet step's CE.
        nonfinite_patience: see :class:`SupernetAlgorithm`.
    """

    def __init__(self, supernet: dict, head: dict,
                 flops_range: Sequence[float | None] = (None, None),
                 flops_metric: str = 'flops', sampler: dict | None = None,
                 warmup: dict | None = None, simplex: dict | None = None,
                 recalibrate_bn: bool = True, calib_batches: int = 4,
                 label_smoothing: float = 0., channels_last: bool = False,
                 data_preprocessor: dict | None = None, init_cfg=None,
                 nonfinite_patience: int = 20):
        super().__init__(supernet, head, channels_last=channels_last,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg,
                         nonfinite_patience=nonfinite_patience)
        if not isinstance(self.backbone, KShotSupernet):
            raise TypeError(f'supernet: type {type(self.backbone).__name__};'
                            " KShotSearch needs type='KShotSupernet' "
                            "(wrapping the space's supernet)")
        self.sampler = build_sampler(self.backbone.supernet,
                                     self.num_classes, flops_range,
                                     flops_metric, **sampler_kwargs(sampler))
        self._init_warmup(warmup)
        self.simplex_cfg = dict(interval=1, paths=16, widths_per_arch=4,
                                reg_weight=1., temperature=0.3,
                                threshold=None)
        unknown = set(simplex or {}) - set(self.simplex_cfg)
        if unknown:
            raise ValueError(f'simplex: unknown keys {sorted(unknown)}; '
                             f'allowed {", ".join(self.simplex_cfg)}')
        self.simplex_cfg.update(simplex or {})
        for k in ('interval', 'paths', 'widths_per_arch'):
            if int(self.simplex_cfg[k]) < 1:
                raise ValueError(f'simplex.{k}={self.simplex_cfg[k]}: '
                                 'must be >= 1')
        self._init_calib(recalibrate_bn, calib_batches)
        self.label_smoothing = float(label_smoothing)
        self.has_channels = self.sampler.encode(
            self.sampler.extreme(True))[1] is not None
        for name in ('iter', 'simplex_steps'):
            self.register_buffer(name, torch.zeros((), dtype=torch.long))
        self.use_board = False  # the shared search hook's view
        self.history: deque = deque(maxlen=20000)
        self.last_step: dict = {}
        self.eval_arch = None
        self.largest = self.sampler.extreme(largest=True)
        self._channel_genes: list[int] | None = None

    # ------------------------------------------------------------ paths
    @property
    def space(self):
        return self.backbone.space

    def forward_path(self, x: torch.Tensor, arch, code=None,
                     detach_shots: bool = False) -> torch.Tensor:
        """Logits of ``arch`` with weights merged by ``code`` (default:
        the simplex-net's lambda)."""
        feats = self.backbone(self._resize(x, arch), arch=arch, code=code,
                              detach_shots=detach_shots)
        if hasattr(self.head, 'set_path'):  # elastic head (AttentiveNAS)
            self.head.set_path(arch)
        return self.head(feats)

    # (forward's modes: SupernetAlgorithm; loss: CE of a sampled path)
    def predict_logits(self, inputs: torch.Tensor, arch) -> torch.Tensor:
        """``mode='predict'``: no-grad logits of the merged weights, BN on
        its running statistics (eval mode)."""
        with torch.no_grad():
            return self.forward_path(inputs, arch)

    # ------------------------------------------------------------- steps
    def train_step(self, data, optim_wrapper):
        """One iteration. Under AMP each step's forwards run in its
        wrapper's autocast context and its losses are scaled by its loss
        scaler (``step`` unscales and skips on inf). A step whose loss is
        not finite (on any rank) updates nothing."""
        sup_ow, simplex_ow = self._wrappers(optim_wrapper)
        with sup_ow.optim_context(self):
            data = self.data_preprocessor(data, True)
        x, y = data['inputs'], self._labels(data['data_samples'])
        active = self.past_warmup()
        self.backbone.simplex.warmup.fill_(not active)
        arch = self.sampler.sample()
        with torch.no_grad():  # Eq. 9: sigma fixed
            code = self.backbone.code(arch)
        bn = self.bn_buffers()
        counters = bn_counters(self.modules())
        bn_before = self.snapshot(bn + counters)
        with sup_ow.optim_context(self):
            logits = self.forward_path(x, arch, code)
            ce = F.cross_entropy(logits, y,
                                 label_smoothing=self.label_smoothing)
        log = dict(loss=ce.detach(), ce=ce.detach(),
                   flops=self.sampler.cost(arch) / 1e6)
        self.last_step = dict(path=self.sampler.key(arch),
                              code=[round(float(v), 4) for v in code],
                              simplex_update=False)
        if not self.finite_step(ce, sup_ow, x):  # neither step moves
            self.restore(bn + counters, bn_before)
            self.iter += 1
            self.last_step['skipped'] = True
            log['skipped'] = 1.
            return log
        # under DDP averaged over ranks in buckets while the backward runs
        averaging = GradMeanHooks(self.supernet_parameters())
        sup_ow.backward(ce)
        averaging.finish()
        if distributed():
            all_reduce_mean(bn)
        if sup_ow.should_update():
            check_lr(sup_ow, 'supernet')
            sup_ow.step()
            sup_ow.zero_grad()
        log['top1'] = self.batch_top1(logits.detach(), y)
        simplex_due = (active and simplex_ow is not None and
                       int(self.iter) % int(self.simplex_cfg['interval'])
                       == 0)
        if simplex_due:
            log.update(self.simplex_step(x, y, simplex_ow))
        self.iter += 1
        self.last_step['simplex_update'] = bool(simplex_due)
        return log

    def simplex_step(self, x: torch.Tensor, y: torch.Tensor,
                     simplex_ow: OptimWrapper) -> dict:
        """Eq. 8 / Eq. 17: m paths on b/m images each, gradient into the
        simplex-net only; returns the logged values. Forwards in the
        wrapper's autocast context, losses scaled by its scaler; a
        non-finite loss (on any rank) skips the update."""
        # at least 2 images per group (BatchNorm on batch statistics)
        m = max(1, min(int(self.simplex_cfg['paths']), len(x) // 2))
        archs = self.simplex_paths(m)
        params = [p for p in self.backbone.simplex.parameters()
                  if p.requires_grad]
        grads = [torch.zeros_like(p) for p in params]
        ce_sum = torch.zeros((), dtype=torch.float64, device=x.device)
        bns = [bn for bn in self.modules() if isinstance(bn, _BatchNorm)
               and bn.training]
        for bn in bns:  # batch statistics, num_batches_tracked untouched
            bn.training = False
        try:
            with bn_batch_stats(self):
                for arch, xg, yg in zip(archs, torch.tensor_split(x, m),
                                        torch.tensor_split(y, m)):
                    code = self.backbone.code(arch)
                    with simplex_ow.optim_context(self):
                        logits = self.forward_path(xg, arch, code,
                                                   detach_shots=True)
                        ce = F.cross_entropy(logits, yg) / m
                    for g, gi in zip(grads, torch.autograd.grad(
                            scaled(simplex_ow, ce), params,
                            allow_unused=True)):
                        if gi is not None:
                            g += gi
                    ce_sum = ce_sum + ce.detach().double()
        finally:
            for bn in bns:
                bn.training = True
        reg = self.channel_reg(archs)
        if reg.requires_grad:
            for g, gi in zip(grads, torch.autograd.grad(
                    scaled(simplex_ow, float(self.simplex_cfg['reg_weight'])
                           * reg), params, allow_unused=True)):
                if gi is not None:
                    g += gi
        out = dict(simplex_ce=float(ce_sum), r_c=float(reg.detach()))
        if not finite_on_every_rank(ce_sum + reg.detach().to(ce_sum)):
            out['simplex_skipped'] = 1.
            return out
        all_reduce_mean(grads)
        for p, g in zip(params, grads):
            p.grad = g
        check_lr(simplex_ow, 'simplex')
        simplex_ow.step()  # AMP: unscaled here, skipped on inf
        simplex_ow.zero_grad()
        self.simplex_steps += 1
        return out

    def channel_reg(self, archs: Sequence) -> torch.Tensor:
        """Mean r_c (Eq. 15-16) over the groups of paths that share an
        architecture (same one-hot) and differ in width, on the simplex-
        net's device; the sampler's encodings stay host tensors (pairs and
        threshold are found on the host, without a device round trip)."""
        device = self.backbone.simplex.arch_branch[0].weight.device
        if not self.has_channels:
            return torch.zeros((), device=device)
        groups: dict = {}
        for arch in archs:
            a, c = self.sampler.encode(arch)
            groups.setdefault(tuple(a.tolist()), []).append((arch, c))
        terms = []
        for members in groups.values():
            if len(members) < 2:
                continue
            codes = torch.stack([self.backbone.code(a) for a, _ in members])
            # host: the pairs and the threshold come from the encodings
            widths = torch.stack([c.float() for _, c in members])
            thr = self.simplex_cfg['threshold']
            if thr is None:
                d = torch.cdist(widths.double(), widths.double(), p=1)
                off = ~torch.eye(len(members), dtype=torch.bool)
                thr = float(d[off].median())
            terms.append(channel_regulariser(
                codes, widths, float(thr),
                float(self.simplex_cfg['temperature'])))
        return (torch.stack(terms).mean() if terms
                else torch.zeros((), device=device))

    def simplex_paths(self, m: int) -> list:
        """m paths; with a channel encoding, groups of
        ``widths_per_arch`` paths of one architecture, different widths."""
        g = int(self.simplex_cfg['widths_per_arch'])
        if not self.has_channels or g == 1:
            return [self.sampler.sample() for _ in range(m)]
        archs = []
        while len(archs) < m:
            base = self.sampler.sample()
            archs += [base] + self.width_variants(
                base, min(g, m - len(archs)) - 1)
        return archs[:m]

    def channel_genes(self) -> list[int]:
        """Genome positions that change only the channel encoding (found
        by probing the sampler's genome at the smallest and largest path)."""
        if self._channel_genes is None:
            lo, hi = self.sampler.genome_bounds()
            arch_genes, chan_genes = set(), set()
            for base in (self.sampler.extreme(False),
                         self.sampler.extreme(True)):
                genes = self.sampler.genome(base)
                a0, c0 = self.sampler.encode(base)
                for i in range(len(genes)):
                    for v in range(lo[i], hi[i] + 1):
                        if v == genes[i]:
                            continue
                        probe = list(genes)
                        probe[i] = v
                        a, c = self.sampler.encode(
                            self.sampler.from_genome(probe))
                        if not torch.equal(a, a0):
                            arch_genes.add(i)
                        elif c is not None and not torch.equal(c, c0):
                            chan_genes.add(i)
            self._channel_genes = sorted(chan_genes - arch_genes)
        return self._channel_genes

    def width_variants(self, arch, n: int, tries: int = 200) -> list:
        """Up to ``n`` paths of ``arch``'s architecture with other widths
        (channel genes redrawn uniformly), inside the FLOPs range."""
        genes = self.channel_genes()
        if n <= 0 or not genes:
            return []
        lo, hi = self.sampler.genome_bounds()
        base = self.sampler.genome(arch)
        rng, (flo, fhi) = self.sampler.generator, self.sampler.flops_range
        seen, out = {self.sampler.key(arch)}, []
        for _ in range(tries):
            new = list(base)
            for i in genes:
                new[i] = lo[i] + int(torch.randint(hi[i] - lo[i] + 1, (1, ),
                                                   generator=rng))
            cand = self.sampler.from_genome(new)
            key = self.sampler.key(cand)
            if key not in seen and flo <= self.sampler.cost(cand) <= fhi:
                seen.add(key)
                out.append(cand)
                if len(out) == n:
                    break
        return out

    # ------------------------------------------------------- parameters
    def supernet_parameters(self) -> list[nn.Parameter]:
        """Theta (K copies), shared stem/tail and head: the 'supernet'
        optimiser's parameters."""
        return [p for p in list(self.backbone.supernet.parameters()) +
                list(self.head.parameters()) if p.requires_grad]

    # (bn_buffers: SupernetAlgorithm)
    def _wrappers(self, optim_wrapper):
        return self._supernet_wrappers(
            optim_wrapper, 'simplex', "optim_wrapper: KShotSearch needs the "
            "keys 'supernet' and 'simplex'")

    # -------------------------------------------------------- evaluation
    # (attach_calib, val_top1: BNRecalibratedScoring; the exported subnet
    # carries the merged weights, :meth:`KShotSupernet.export`)
    def board_table(self) -> list[dict]:
        """No board in K-shot NAS (the shared hook's interface)."""
        return []


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class KShotOptimWrapperConstructor:
    """``OptimWrapperDict(supernet=..., simplex=...)`` for
    :class:`KShotSearch`: ``supernet`` optimises Theta (the K copies), the
    shared stem/tail and the head (Eq. 9), ``simplex`` the simplex-net's
    sigma (Eq. 8)::

        optim_wrapper = dict(
            constructor='KShotOptimWrapperConstructor',
            supernet=dict(optimizer=dict(type='SGD', lr=0.12, momentum=0.9,
                                         nesterov=True, weight_decay=4e-5)),
            simplex=dict(optimizer=dict(type='Adam', lr=1e-3)))

    Top-level ``type`` / ``loss_scale`` / ``dtype`` (``--amp``) apply to
    both parts (:func:`~cream_mm.search.optim.apply_shared`).
    """

    PARTS = ('supernet', 'simplex')

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg=None):
        cfg = apply_shared(
            {k: copy.deepcopy(dict(v)) if isinstance(v, dict) else v
             for k, v in dict(optim_wrapper_cfg).items()},
            self.PARTS, type(self).__name__)
        if set(cfg) != set(self.PARTS):
            raise ValueError(f'optim_wrapper: keys {sorted(cfg)}; '
                             "KShotOptimWrapperConstructor takes exactly "
                             "'supernet' and 'simplex' (and the wrapper "
                             f"keys {', '.join(SHARED_KEYS)}, applied to "
                             'both)')
        self.cfg = cfg

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if is_model_wrapper(model):
            model = model.module
        parts = dict(
            supernet=nn.ModuleDict(dict(backbone=model.backbone.supernet,
                                        head=model.head)),
            simplex=nn.ModuleDict(dict(simplex=model.backbone.simplex)))
        wrappers = {}
        for name, module in parts.items():
            cfg = copy.deepcopy(self.cfg[name])
            paramwise = cfg.pop('paramwise_cfg', None)
            wrappers[name] = DefaultOptimWrapperConstructor(cfg, paramwise)(
                module)
        return OptimWrapperDict(**wrappers)


__all__ = ['KShotSearch', 'KShotOptimWrapperConstructor']
