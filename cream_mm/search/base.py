"""What every supernet-training algorithm (Cream, the sandwich rule,
K-shot) shares as an mmengine ``BaseModel``: building the supernet
(``backbone``), the classification head and the data preprocessor, NHWC
memory format, input resizing, ``forward``'s three modes, the BN running
statistics and the held-out batches used to score subnets
(:meth:`attach_search_val`, attached by the search hook).

Two mixins hold what two of the three share: :class:`WarmupSchedule`
(Cream, K-shot) and :class:`BNRecalibratedScoring` (sandwich, K-shot)."""
from __future__ import annotations

import logging
from typing import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MessageHub, print_log
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, OptimWrapperDict
import mmpretrain.models  # noqa: F401  (registers ClsDataPreprocessor)
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch.nn.modules.batchnorm import _BatchNorm

from .precision import NonFiniteGuard
from .runtime import all_reduce_mean, all_reduce_sum, bn_batch_stats


def build_preprocessor(cfg):
    """``ClsDataPreprocessor`` updated by ``cfg`` (a dict), or ``cfg``
    itself when it is already a module."""
    if cfg is None or isinstance(cfg, dict):
        return MODELS.build(dict(dict(type='ClsDataPreprocessor'),
                                 **(cfg or {})))
    return cfg


def sampler_kwargs(sampler: dict | None) -> dict:
    """The sampler options with ``seed`` defaulting to the runner's seed
    (``torch.initial_seed()`` when the model is built)."""
    sampler = dict(sampler or {})
    sampler.setdefault('seed', torch.initial_seed() % (1 << 62))
    return sampler


def running_stats(modules: Iterable[nn.Module]) -> list[torch.Tensor]:
    """Running mean and variance of every tracking BatchNorm among
    ``modules`` (in order)."""
    return [t for m in modules if isinstance(m, _BatchNorm)
            and m.track_running_stats and m.running_mean is not None
            for t in (m.running_mean, m.running_var)]


def bn_counters(modules: Iterable[nn.Module]) -> list[torch.Tensor]:
    """``num_batches_tracked`` of every tracking BatchNorm among
    ``modules``: with :func:`running_stats`, what a training forward
    changes (a skipped step restores both)."""
    return [m.num_batches_tracked for m in modules
            if isinstance(m, _BatchNorm) and m.track_running_stats
            and m.num_batches_tracked is not None]


def predict_samples(logits: torch.Tensor, data_samples=None) -> list:
    """``data_samples`` (new ``DataSample`` s if None) with the softmax
    scores and argmax labels of ``logits``."""
    samples = data_samples or [DataSample() for _ in logits]
    for s, score in zip(samples, logits.softmax(1)):
        s.set_pred_score(score).set_pred_label(score.argmax())
    return samples


class SupernetAlgorithm(BaseModel):
    """Base of the search algorithms: ``backbone`` (a
    :class:`~cream_mm.search.protocol.Supernet`), ``head``,
    ``num_classes``, ``channels_last`` and the held-out batches.

    Args:
        supernet (dict): config of the supernet.
        head (dict): config of the classification head.
        channels_last: keep weights and inputs in NHWC memory format (the
            same computation; ~1.5x faster convolutions on x86 CPUs).
        data_preprocessor (dict): mmpretrain data preprocessor.
        nonfinite_patience: steps with a non-finite loss (each skipped:
            no update at all) in a row after which training stops with
            :class:`~cream_mm.search.precision.NonFiniteLossError`; 0 never
            stops.
    """
    #: the error of :meth:`_val_batch` without held-out data
    missing_val_data = (
        'scoring subnets needs held-out data: add the search hook '
        '(CreamSearchHook / SupernetSearchHook) with a '
        'search_val_dataloader or call attach_search_val()')

    def __init__(self, supernet: dict, head: dict,
                 channels_last: bool = False,
                 data_preprocessor: dict | None = None, init_cfg=None,
                 nonfinite_patience: int = 20):
        super().__init__(data_preprocessor=build_preprocessor(
            data_preprocessor), init_cfg=init_cfg)
        self._build_networks(supernet, head)
        self.channels_last = bool(channels_last)
        if self.channels_last:  # NHWC weights and inputs (faster on CPU)
            self.backbone.to(memory_format=torch.channels_last)
            self.head.to(memory_format=torch.channels_last)
        self._val_batches: list | None = None
        self.nonfinite = NonFiniteGuard(nonfinite_patience)

    def _build_networks(self, supernet: dict, head: dict) -> None:
        """``backbone`` (the supernet), ``head`` and ``num_classes``
        (mmpretrain's registry; a detection search builds a detector)."""
        self.backbone = MODELS.build(supernet)
        self.head = MODELS.build(head)
        self.num_classes = self.head.num_classes

    @staticmethod
    def _labels(data_samples) -> torch.Tensor:
        return torch.cat([s.gt_label for s in data_samples])

    # ------------------------------------------------------------- paths
    def _input_size(self, arch) -> int | None:
        """Input resolution of ``arch`` (None: as given)."""
        return self.sampler.resolution(arch)

    def _resize(self, x: torch.Tensor, arch) -> torch.Tensor:
        """``x`` resized (bilinear) to ``arch``'s resolution, NHWC with
        ``channels_last``."""
        size = self._input_size(arch)
        if size and x.shape[-1] != size:
            x = F.interpolate(x, size=(size, ) * 2, mode='bilinear',
                              align_corners=False)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def bn_buffers(self) -> list[torch.Tensor]:
        """Running BN statistics of the supernet and the head."""
        return running_stats(list(self.backbone.modules()) +
                             list(self.head.modules()))

    # ---------------------------------------------------------- inference
    def selected_arch(self):
        """The subnet of val / test: ``eval_arch`` if set, else the
        largest."""
        return self.eval_arch if self.eval_arch is not None else self.largest

    def parse_arch(self, text: str):
        """An arch key string as the sampler's arch (validated)."""
        return self.sampler.parse(text)

    def forward_loss(self, inputs: torch.Tensor, data_samples) -> dict:
        """``mode='loss'``: CE of a path drawn by the sampler."""
        logits = self.forward_path(inputs, self.sampler.sample())
        return dict(loss=F.cross_entropy(logits, self._labels(data_samples)))

    def predict_logits(self, inputs: torch.Tensor, arch) -> torch.Tensor:
        """``mode='predict'``: no-grad logits, BN on batch statistics."""
        with torch.no_grad(), bn_batch_stats(self):
            return self.forward_path(inputs, arch)

    def forward(self, inputs: torch.Tensor, data_samples=None,
                mode: str = 'tensor', arch=None):
        """``tensor``: logits of ``arch`` (default :meth:`selected_arch`;
        a key string is parsed by :meth:`parse_arch`); ``loss``:
        :meth:`forward_loss`; ``predict``: DataSamples scored by
        :meth:`predict_logits`."""
        if arch is None:
            arch = self.selected_arch()
        elif isinstance(arch, str):
            arch = self.parse_arch(arch)
        if mode == 'tensor':
            return self.forward_path(inputs, arch)
        if mode == 'loss':
            return self.forward_loss(inputs, data_samples)
        if mode == 'predict':
            return predict_samples(self.predict_logits(inputs, arch),
                                   data_samples)
        raise ValueError(f'mode={mode!r}: allowed tensor, loss, predict')

    # ------------------------------------------------------ optimisation
    @staticmethod
    def _supernet_wrappers(optim_wrapper, other: str, missing: str):
        """``(supernet wrapper, wrapper 'other' | None)`` of an
        ``OptimWrapperDict`` (``missing``: the KeyError's message when it
        has no 'supernet') or of one ``OptimWrapper`` (``other`` None)."""
        if isinstance(optim_wrapper, OptimWrapperDict):
            if 'supernet' not in optim_wrapper:
                raise KeyError(missing)
            second = (optim_wrapper[other] if other in optim_wrapper
                      else None)
            return optim_wrapper['supernet'], second
        if isinstance(optim_wrapper, OptimWrapper):
            return optim_wrapper, None
        raise TypeError(f'optim_wrapper: {type(optim_wrapper).__name__}')

    def finite_step(self, loss: torch.Tensor, optim_wrapper,
                    inputs: torch.Tensor, what: str = 'loss') -> bool:
        """Whether this step may update anything: ``loss`` finite on every
        rank (one ``isfinite``; the flag reduced over ranks). A False step
        leaves weights, BN statistics, board and meta / simplex network as
        they were (the caller's job); warned once per run of such steps."""
        ok = self.nonfinite.ok(loss, int(self.iter), what, optim_wrapper,
                               inputs)
        if not ok and self.nonfinite.in_a_row == 1:
            print_log(f'iteration {int(self.iter) + 1}: non-finite '
                      f'{what}, step skipped (nothing updated)',
                      logger='current', level=logging.WARNING)
        return ok

    @staticmethod
    def snapshot(tensors: list) -> list:
        """Copies of ``tensors`` (BN statistics a skipped step restores)."""
        return [t.clone() for t in tensors]

    @staticmethod
    def restore(tensors: list, saved: list) -> None:
        for t, s in zip(tensors, saved):
            t.copy_(s)

    # ------------------------------------------------------ validation data
    def attach_search_val(self, batches: list) -> None:
        """Held-out batches (raw dataloader outputs) for subnet scoring;
        under DDP each rank holds its shard."""
        self._val_batches = list(batches)
        self._val_count = None
        if not self._val_batches:
            raise ValueError('attach_search_val: no batches')

    def _val_batch(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._val_batches:
            raise RuntimeError(self.missing_val_data)
        data = self.data_preprocessor(
            self._val_batches[i % len(self._val_batches)], False)
        return data['inputs'], self._labels(data['data_samples'])

    @torch.no_grad()
    def batch_top1(self, logits: torch.Tensor, y: torch.Tensor) -> float:
        """Top-1 (%) of ``logits``, counts summed over ranks."""
        counts = torch.tensor([(logits.argmax(1) == y).sum().item(), len(y)],
                              dtype=torch.float64)
        all_reduce_sum(counts)
        return float(100. * counts[0] / counts[1])


class WarmupSchedule:
    """``warmup`` (``iters`` and/or ``epochs``) of an algorithm with an
    ``iter`` buffer: :meth:`past_warmup` says when it is over."""

    def _init_warmup(self, warmup: dict | None) -> None:
        self.warmup = dict(iters=0, epochs=0)
        self.warmup.update(warmup or {})

    def past_warmup(self) -> bool:
        if int(self.iter) < int(self.warmup['iters']):
            return False
        epochs = int(self.warmup['epochs'])
        if epochs:
            epoch = MessageHub.get_current_instance().get_info('epoch')
            if epoch is None:
                raise RuntimeError("warmup.epochs needs the runner's epoch "
                                   '(EpochBasedTrainLoop); use warmup.iters')
            return epoch >= epochs
        return True


class BNRecalibratedScoring:
    """:meth:`val_top1` of AttentiveNAS / AlphaNet for a
    :class:`SupernetAlgorithm`: with ``recalibrate_bn`` the subnet is
    exported (:func:`~cream_mm.evaluation.ranking.inherited_network`, the
    supernet's weights as the algorithm defines them) and its BN statistics
    re-estimated on ``calib_batches`` training batches (attached by the
    search hook, :meth:`attach_calib`); otherwise BN uses each held-out
    batch's statistics."""

    def _init_calib(self, recalibrate_bn: bool, calib_batches: int) -> None:
        self.recalibrate_bn = bool(recalibrate_bn)
        self.calib_batches = int(calib_batches)
        self._calib: list | None = None

    def attach_calib(self, batches: list) -> None:
        """Training batches (raw dataloader outputs) for the BN
        re-calibration of :meth:`val_top1`; the first ``calib_batches``
        are kept."""
        self._calib = list(batches)[:max(self.calib_batches, 1)]
        if not self._calib:
            raise ValueError('attach_calib: no batches')

    @torch.no_grad()
    def val_top1(self, arch) -> float:
        """Top-1 (%) of ``arch`` on the attached held-out batches (counts
        summed over ranks; re-calibrated BN statistics averaged over
        ranks)."""
        from ..evaluation.ranking import (_batch, inherited_network,
                                          recalibrate_bn)
        counts = torch.zeros(2, dtype=torch.float64)
        n_val = len(self._val_batches or [None])
        if self.recalibrate_bn:
            if not self._calib:
                raise RuntimeError(
                    'val_top1 with recalibrate_bn=True needs training '
                    'batches: attach_calib() (the search hook does it) or '
                    'set recalibrate_bn=False')
            net = inherited_network(self, arch)
            recalibrate_bn(net, [_batch(self, b) for b in self._calib])
            all_reduce_mean([t for m in net.modules()
                             if isinstance(m, _BatchNorm)
                             for t in (m.running_mean, m.running_var)])
            for i in range(n_val):
                xv, yv = self._val_batch(i)
                xv = xv.float().contiguous(memory_format=torch.channels_last)
                counts += torch.tensor(
                    [float((net(xv).argmax(1) == yv).sum()), len(yv)],
                    dtype=torch.float64)
        else:
            with bn_batch_stats(self):
                for i in range(n_val):
                    xv, yv = self._val_batch(i)
                    logits = self.forward_path(xv, arch)
                    counts += torch.tensor(
                        [float((logits.argmax(1) == yv).sum()), len(yv)],
                        dtype=torch.float64)
        all_reduce_sum(counts)
        return float(100. * counts[0] / counts[1])
