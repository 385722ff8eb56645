"""Sandwich-rule supernet training with in-place distillation (BigNAS /
AttentiveNAS / AlphaNet) as an mmengine ``BaseModel``, for any space of the
search protocol (:mod:`cream_mm.search.protocol`).

``train_step`` is the body of AlphaNet's ``train_epoch``
(``train_alphanet.py``, reference ``alphanet_kshot.md`` §1.2):

1. the **largest** subnet (``sampler.extreme(True)``) on the labels,
   ``CE_ls(y, N(x; a_max))`` with label smoothing 0.1 (optionally with
   dropout ``max_path_dropout``); its logits, detached, are the teacher
   (no separate teacher pass);
2. ``num_random`` random subnets (``sampler.sample()``) and the
   **smallest** (``sampler.extreme(False)``), each on
   ``KD(N(x; a), teacher)`` only -- no label term. ``kd_loss``: the soft
   cross entropy of AttentiveNAS's ``KLLossSoft`` (default) or AlphaNet's
   adaptive alpha-divergence (Eq. 6 of AlphaNet, ``dict(type=
   'AdaptiveAlphaDivergence')``);
3. gradients of all subnets accumulate; one optimiser step. mmengine's
   ``OptimWrapper.step`` clips the accumulated gradient once before
   ``optimizer.step`` (``clip_grad=dict(type='value', clip_value=1.0)``:
   ``clip_grad_value_`` as the authors advise with the alpha-divergence).

Distributed: every rank draws the same subnets (the sampler's generator is
part of the checkpoint and broadcast by ``CreamSearchDDP``); gradients and
BatchNorm running statistics are averaged over ranks after the backward
passes, so every rank's supernet stays identical.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmpretrain.registry import MODELS

from ..models.losses import soft_cross_entropy
from .base import (BNRecalibratedScoring, SupernetAlgorithm, bn_counters,
                   sampler_kwargs)
from .precision import backward_uncounted, check_lr
from .runtime import GradMeanHooks, all_reduce_mean, distributed
from .samplers import build_sampler


@MODELS.register_module()
class SoftCrossEntropyKD(nn.Module):
    """KD loss of AttentiveNAS (``KLLossSoft``): ``-sum softmax(t/T)
    log_softmax(s/T)``, batch mean (the KL divergence up to the teacher's
    entropy: the same gradient); ``forward(student, teacher)``."""

    def __init__(self, temperature: float = 1.):
        super().__init__()
        self.temperature = float(temperature)

    def forward(self, student_logits, teacher_logits):
        return soft_cross_entropy(student_logits, teacher_logits,
                                  self.temperature)


@MODELS.register_module()
class SandwichSearch(BNRecalibratedScoring, SupernetAlgorithm):
    """Supernet + sampler trained by the sandwich rule (see module doc).

    Args:
        supernet (dict): config of a supernet (any registered space).
        head (dict): config of the classification head.
        flops_range: ``(min, max)`` cost of the random subnets (None
            bounds: unconstrained, as AlphaNet's ``sample_active_subnet``).
        flops_metric: ``'flops'`` (paper counting), ``'macs'``, ``'params'``.
        sampler (dict): keyword arguments of the space's sampler
            (:func:`build_sampler`); ``seed`` defaults to the runner's seed.
        num_random: random subnets per step between the largest and the
            smallest (AlphaNet: 2).
        kd_loss (dict): KD loss config ``(student, teacher) -> scalar``;
            default ``SoftCrossEntropyKD`` (AttentiveNAS),
            ``dict(type='AdaptiveAlphaDivergence')`` for AlphaNet.
        label_smoothing: of the largest subnet's CE (0.1).
        max_path_dropout: if set, every ``nn.Dropout`` of the head and
            supernet drops with this probability for the largest subnet and
            is off for the others (AlphaNet: 0.2); None leaves them alone.
        max_path_drop_connect: if set, the supernet's
            ``set_drop_path(rate)`` (AlphaNet's drop_connect, e.g. in the
            last two stages of :class:`AttentiveSupernet`) is called with
            this rate for the largest subnet and 0 for the others.
        recalibrate_bn: :meth:`val_top1` re-estimates the subnet's BN
            statistics on ``calib_batches`` training batches first (as
            AlphaNet / AttentiveNAS always do); False: batch statistics.
        calib_batches: batches for the re-calibration (the search hook
            attaches them from the training data).
        channels_last, data_preprocessor, nonfinite_patience: see
            :class:`SupernetAlgorithm`.
    """

    def __init__(self, supernet: dict, head: dict,
                 flops_range: Sequence[float | None] = (None, None),
                 flops_metric: str = 'flops', sampler: dict | None = None,
                 num_random: int = 2, kd_loss: dict | None = None,
                 label_smoothing: float = 0.1,
                 max_path_dropout: float | None = None,
                 max_path_drop_connect: float | None = None,
                 recalibrate_bn: bool = True, calib_batches: int = 4,
                 channels_last: bool = False,
                 data_preprocessor: dict | None = None, init_cfg=None,
                 nonfinite_patience: int = 20):
        super().__init__(supernet, head, channels_last, data_preprocessor,
                         init_cfg, nonfinite_patience)
        if int(num_random) < 0:
            raise ValueError(f'num_random={num_random}: must be >= 0')
        if not 0 <= float(label_smoothing) < 1:
            raise ValueError(f'label_smoothing={label_smoothing}: must be '
                             'in [0, 1)')
        self.num_random = int(num_random)
        self.label_smoothing = float(label_smoothing)
        self.sampler = build_sampler(self.backbone, self.num_classes,
                                     flops_range, flops_metric,
                                     **sampler_kwargs(sampler))
        self.kd_loss = MODELS.build(kd_loss or dict(type='SoftCrossEntropyKD'))
        self.dropouts = [m for part in (self.backbone, self.head)
                         for m in part.modules() if isinstance(m, nn.Dropout)]
        if max_path_dropout is not None:
            if not 0 <= float(max_path_dropout) < 1:
                raise ValueError(f'max_path_dropout={max_path_dropout}: '
                                 'must be in [0, 1)')
            if not self.dropouts:
                raise ValueError('max_path_dropout: the head and supernet '
                                 'have no nn.Dropout (set e.g. the head\'s '
                                 'dropout > 0)')
        self.max_path_dropout = max_path_dropout
        if max_path_drop_connect is not None and not hasattr(
                self.backbone, 'set_drop_path'):
            raise ValueError(f'max_path_drop_connect: '
                             f'{type(self.backbone).__name__} has no '
                             'set_drop_path(rate)')
        self.max_path_drop_connect = max_path_drop_connect
        self._init_calib(recalibrate_bn, calib_batches)
        self.largest = self.sampler.extreme(largest=True)
        self.smallest = self.sampler.extreme(largest=False)
        self.register_buffer('iter', torch.zeros((), dtype=torch.long))
        self.eval_arch = None
        self.last_step: dict = {}

    # ------------------------------------------------------------- paths
    def forward_path(self, x: torch.Tensor, arch) -> torch.Tensor:
        """Logits of ``arch`` (input resized to its resolution)."""
        x = self._resize(x, arch)
        self.backbone.set_path(arch)
        if hasattr(self.head, 'set_path'):  # elastic head (AttentiveNAS)
            self.head.set_path(arch)
        return self.head(self.backbone(x))

    @contextmanager
    def _dropout(self, largest: bool):
        """Dropout / drop-connect of the largest subnet (``largest``) or of
        the others (off) while training; restored afterwards."""
        p = self.max_path_dropout
        saved = [m.p for m in self.dropouts]
        if p is not None:
            for m in self.dropouts:
                m.p = float(p) if largest else 0.
        rate = self.max_path_drop_connect
        if rate is not None:
            self.backbone.set_drop_path(float(rate) if largest else 0.)
        try:
            yield
        finally:
            for m, q in zip(self.dropouts, saved):
                m.p = q
            if rate is not None:
                self.backbone.set_drop_path(0.)

    def step_paths(self) -> list[tuple[str, object]]:
        """``(name, arch)`` trained by the next step: ``max``, ``rand<i>``
        (drawn now from the sampler's generator), ``min``."""
        return ([('max', self.largest)] +
                [(f'rand{i}', self.sampler.sample())
                 for i in range(self.num_random)] +
                [('min', self.smallest)])

    def sandwich_losses(self, x: torch.Tensor, y: torch.Tensor, paths,
                        backward, autocast=nullcontext) -> dict:
        """Forward and ``backward(loss, last)`` each path in turn (one
        graph alive at a time); returns the detached losses by name.
        ``autocast``: the context of every forward and loss (the optim
        wrapper's :meth:`optim_context`); the backward runs outside it."""
        losses, teacher = {}, None
        for k, (name, arch) in enumerate(paths):
            last = k == len(paths) - 1
            with autocast():
                if teacher is None:  # the largest: labels, the teacher
                    with self._dropout(largest=True):
                        logits = self.forward_path(x, arch)
                    loss = F.cross_entropy(
                        logits, y, label_smoothing=self.label_smoothing)
                    teacher = logits.detach()
                else:  # in-place distillation, no label term
                    with self._dropout(largest=False):
                        logits = self.forward_path(x, arch)
                    loss = self.kd_loss(logits, teacher)
            losses[name] = loss.detach()
            backward(loss, last)
        return losses

    # ----------------------------------------------------------- training
    def train_step(self, data, optim_wrapper):
        """One sandwich step. Under AMP every subnet's forward runs in the
        wrapper's autocast context and every backward on the loss scaled by
        its loss scaler (one scale per step, so the accumulated gradient is
        the scaled sum; ``step`` unscales, clips and skips on inf). A step
        whose losses are not all finite (on any rank) updates nothing."""
        ow = self._wrapper(optim_wrapper)
        with ow.optim_context(self):
            data = self.data_preprocessor(data, True)
        x, y = data['inputs'], self._labels(data['data_samples'])
        paths = self.step_paths()
        bn = self.bn_buffers()
        counters = bn_counters(self.modules())
        bn_before = self.snapshot(bn + counters)
        seen, skipped = [], []

        def backward(loss, last):
            # gradients accumulate over the subnets; the wrapper counts the
            # step once (its accumulation / loss scaling stay per iteration)
            seen.append(loss.detach())
            loss = ow.scale_loss(loss)
            if not last:
                backward_uncounted(ow, loss)
            elif self.finite_step(torch.stack(seen).sum(), ow, x):
                # under DDP: averaged over ranks in buckets while the last
                # backward runs (the other subnets' gradients are final)
                averaging = GradMeanHooks(self.parameters())
                ow.backward(loss)
                averaging.finish()
            else:
                skipped.append(True)

        losses = self.sandwich_losses(x, y, paths, backward,
                                      lambda: ow.optim_context(self))
        log = {f'loss_{k}': v for k, v in losses.items()}
        log['loss'] = sum(losses.values())
        self.iter += 1
        self.last_step = dict(paths=[self.sampler.key(a) for _, a in paths])
        if skipped:  # nothing moves: gradients dropped, BN restored
            ow.zero_grad()
            self.restore(bn + counters, bn_before)
            self.last_step['skipped'] = True
            log['skipped'] = 1.
            return log
        if distributed():  # same subnets on every rank: average the rest
            all_reduce_mean(bn)
        if ow.should_update():
            check_lr(ow, 'optimizer')
            ow.step()  # clip_grad (if configured) once, then the update
            ow.zero_grad()
        return log

    @staticmethod
    def _wrapper(optim_wrapper) -> OptimWrapper:
        if isinstance(optim_wrapper, OptimWrapperDict):
            raise TypeError('SandwichSearch takes one OptimWrapper (a plain '
                            'optim_wrapper config), not an OptimWrapperDict')
        if not isinstance(optim_wrapper, OptimWrapper):
            raise TypeError(f'optim_wrapper: {type(optim_wrapper).__name__}')
        return optim_wrapper

    # ---------------------------------------------------------- inference
    # (forward, selected_arch: SupernetAlgorithm; predict: BN on batch
    # statistics)
    def forward_loss(self, inputs: torch.Tensor, data_samples) -> dict:
        """``mode='loss'``: the largest subnet's label-smoothed CE."""
        return dict(loss=F.cross_entropy(
            self.forward_path(inputs, self.largest),
            self._labels(data_samples),
            label_smoothing=self.label_smoothing))

    # ------------------------------------------------------------ scoring
    # (attach_calib, val_top1: BNRecalibratedScoring; the exported subnet
    # carries the supernet's sliced weights)


__all__ = ['SandwichSearch', 'SoftCrossEntropyKD']
