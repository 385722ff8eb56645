"""Cream on the detection objective: Alg. 1 with an unmodified mmdet
detector whose backbone is the hypernetwork (docs/detection_search.md).

:class:`DetCreamSearch` is :class:`~cream_mm.search.cream.CreamSearch` --
the same sampler, FLOPs range, board, warm-up, meta network, Eq. 6
machinery, non-finite guard, DDP synchronisation and resume state -- with
the task parts of a detector:

* the path (``CreamSupernet.set_path``) runs inside any mmdet detector
  built from an ordinary config (RetinaNet, FCOS, ATSS, GFL, Faster R-CNN,
  ...); the task loss of Eq. 5 is the detector's own ``loss`` summed by
  ``parse_losses``;
* Eq. 5's KD compares the per-anchor classification distributions of the
  dense head (the RPN's objectness for a two-stage detector) of the
  student's forward with those of the matched board path's forward through
  the same neck and head (no grad, BN on the batch's statistics), optionally
  also a GFL head's box distributions (:mod:`cream_mm.models.det_distill`);
* Eq. 4's input is the per-class pooled probability of that head on the
  ``match_images`` images, board paths and the sampled path in one no-grad
  pass under one normalisation (a path matched with itself differs by 0);
* Eq. 3 scores paths by COCO mAP (%) of the held-out detection subset
  through mmdet's ``CocoMetric`` (``evaluator``), every path that could
  enter the board unless the sigma screen (training-batch score: minus the
  detector's loss) is on; no early stop (mAP does not decompose over
  images);
* Eq. 6's R is the detector's loss on a held-out batch with the path's
  backbone, neck and head weights after the simulated step;
* FLOPs of the range and the board count the backbone at the detection
  input size (``space.input_size``), no classification head.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn as nn
from mmdet.registry import METRICS as DET_METRICS
from mmdet.registry import MODELS as DET_MODELS
from mmengine.config import Config, ConfigDict
from mmengine.evaluator import Evaluator
from mmpretrain.registry import MODELS
from torch.func import functional_call

from ..arch import Arch, format_arch
from ..models.complexity import arch_cost
from ..models.det_distill import (POOLS, box_distribution_kd, dense_cls_kd,
                                  pooled_scores)
from .base import running_stats
from .cream import CreamSearch
from .flops_table import FlopsTable
from .runtime import all_reduce_mean, bn_batch_stats

#: screens of the detection search (the entry screen's calibration of
#: held-out mAP against a training-batch loss has no meaning)
DET_SCREENS = (False, True, 'sigma')


def _head_num_classes(detector: nn.Module) -> int:
    head = getattr(detector, 'bbox_head', None)
    if head is None:
        head = getattr(detector.roi_head, 'bbox_head')
    return int(head.num_classes)


@MODELS.register_module()
@DET_MODELS.register_module()
class DetCreamSearch(CreamSearch):
    """Cream search (Alg. 1) on an mmdet detector (module doc).

    Args:
        detector (dict): an ordinary mmdet detector config (its
            ``data_preprocessor`` becomes the search's).
        supernet (dict): the hypernetwork replacing ``detector.backbone``
            (e.g. ``dict(type='CreamSupernet', out_indices=(2, 4, 6))``);
            None keeps the detector's backbone (it must be a supernet).
        neck (dict): keys updating ``detector.neck`` (e.g.
            ``start_level=0``); its ``in_channels`` are set from the
            supernet's widths at ``out_indices`` unless given here.
        evaluator (dict): the metric of Eq. 3 (default mmdet's
            ``CocoMetric`` on ``bbox``; its ``ann_file`` must hold the
            held-out images); ``score_key`` the metric's key scored
            (``'coco/bbox_mAP'``, in % on the board).
        distill (dict): ``temperature``, ``weight`` (rho when not meta),
            ``loss_form``, ``box`` (also distil a GFL head's box
            distributions, weight ``box_weight``).
        match (dict): ``pool`` of Eq. 4's input: ``'max'``, ``'mean'`` or
            ``'max+mean'`` over anchors.
        other arguments: as :class:`CreamSearch` (``scoring.on`` only
            ``'val'``, ``scoring.screen`` False / ``'sigma'``,
            ``scoring.early_stop`` False).
    """
    train_score_key = 'train_score'
    #: what the board's scores are (hook logs; rows keep the key 'top1')
    score_name = 'COCO mAP'
    missing_val_data = (
        'scoring paths by mAP (Eq. 3) and the meta update (Eq. 6) need '
        'held-out detection data: add CreamSearchHook with a '
        'search_val_dataloader or call attach_search_val()')

    def __init__(self, detector: dict, supernet: dict | None = None,
                 neck: dict | None = None, evaluator: dict | None = None,
                 score_key: str = 'coco/bbox_mAP',
                 match: dict | None = None, distill: dict | None = None,
                 scoring: dict | None = None, init_cfg=None, **kwargs):
        cost = dict(kwargs.get('cost') or {})
        if cost.get('type', 'flops') != 'flops':
            raise ValueError(f"cost.type={cost['type']!r}: the detection "
                             "search's cost is the backbone's FLOPs; "
                             "allowed 'flops' (a latency table times the "
                             'classification network)')
        for key in ('head', 'channels_last', 'data_preprocessor'):
            if key in kwargs:
                raise ValueError(f'DetCreamSearch: {key!r} comes from the '
                                 "detector's config; remove it")
        detector = copy.deepcopy(dict(detector))
        pre_cfg = detector.pop('data_preprocessor',
                               dict(type='DetDataPreprocessor'))
        preprocessor = DET_MODELS.build(copy.deepcopy(pre_cfg))
        # plain attributes, read by _build_networks during __init__
        self._det_args = (detector, supernet, neck, pre_cfg)
        self.match_cfg = dict(pool='max')
        self.match_cfg.update(match or {})
        if self.match_cfg['pool'] not in POOLS:
            raise ValueError(f"match.pool={self.match_cfg['pool']!r}: "
                             f'allowed {", ".join(map(repr, POOLS))}')
        distill = dict(dict(box=False, box_weight=1.), **(distill or {}))
        if distill.get('kd_loss'):
            raise ValueError('distill.kd_loss: the detection search distils '
                             'per-anchor distributions (det_distill); '
                             'remove it')
        scoring = dict(dict(early_stop=False), **(scoring or {}))
        if scoring.get('on', 'val') != 'val':
            raise ValueError(f"scoring.on={scoring['on']!r}: the detection "
                             "search scores on held-out data only ('val')")
        if scoring['early_stop']:
            raise ValueError('scoring.early_stop=True: mAP does not '
                             'decompose over images; allowed False')
        if scoring.get('screen', False) not in DET_SCREENS:
            raise ValueError(f"scoring.screen={scoring['screen']!r}: "
                             f'allowed {", ".join(map(repr, DET_SCREENS))}')
        super().__init__(supernet=None, head=None, distill=distill,
                         scoring=scoring, data_preprocessor=preprocessor,
                         init_cfg=init_cfg, **kwargs)
        if self.distill_cfg['box'] and not hasattr(self.kd_head, 'reg_max'):
            raise ValueError('distill.box=True distils box distributions of '
                             f'a GFL-style head; '
                             f'{type(self.kd_head).__name__} has none')
        self.evaluator_cfg = dict(evaluator or dict(type='CocoMetric',
                                                    metric='bbox'))
        self.score_key = score_key
        self.dataset_meta: dict | None = None
        self._task_value: torch.Tensor | None = None

    # ------------------------------------------------------------ building
    def _build_networks(self, supernet, head) -> None:
        detector, supernet, neck, pre_cfg = self._det_args
        if supernet is not None:
            detector['backbone'] = dict(supernet)
        neck_update = dict(neck or {})
        if 'neck' in detector:
            detector['neck'] = dict(detector['neck'], **neck_update)
            if 'in_channels' in detector['neck'] and \
                    'in_channels' not in neck_update:
                bb = DET_MODELS.build(detector['backbone'])
                detector['neck']['in_channels'] = [
                    int(bb.out_channels[i]) for i in bb.out_indices]
                del bb
        # the detector's own config (exported with the fixed child)
        self.detector_cfg = dict(copy.deepcopy(detector),
                                 data_preprocessor=pre_cfg)
        # ConfigDict: mmdet's heads read their train/test cfg by attribute
        self.detector = DET_MODELS.build(ConfigDict(detector))
        if not hasattr(self.detector.backbone, 'set_path'):
            raise TypeError(f'detector.backbone: '
                            f'{type(self.detector.backbone).__name__} is not '
                            "a supernet; set supernet=dict(type="
                            "'CreamSupernet', ...)")
        self.num_classes = _head_num_classes(self.detector)

    @property
    def backbone(self) -> nn.Module:
        """The hypernetwork (``detector.backbone``)."""
        return self.detector.backbone

    @property
    def head(self) -> nn.ModuleDict:
        """Everything of the detector but the backbone (neck and heads):
        with ``backbone`` the supernet part that the ``supernet`` wrapper
        optimises."""
        return nn.ModuleDict({n: m for n, m in self.detector.named_children()
                              if n not in ('backbone', 'data_preprocessor')})

    @property
    def kd_head(self) -> nn.Module:
        """The dense head whose outputs Eq. 4 and Eq. 5 read: the RPN of a
        two-stage detector, else ``bbox_head``."""
        return getattr(self.detector, 'rpn_head', None) or \
            self.detector.bbox_head

    def _flops_table(self, metric: str) -> FlopsTable:
        """Backbone FLOPs at the detection input size (no cls head)."""
        return FlopsTable(self.space, metric, self.num_classes,
                          with_head=False)

    @property
    def match_dim(self) -> int:
        head = self.kd_head
        n = int(head.num_classes)
        return n * (2 if self.match_cfg['pool'] == 'max+mean' else 1)

    # ------------------------------------------------------------- paths
    def _split_batch(self, data: dict) -> tuple:
        return data['inputs'], data['data_samples']

    def _head_outputs(self, x: torch.Tensor, arch: Arch) -> tuple:
        self.backbone.set_path(arch)
        return self.kd_head(self.detector.extract_feat(x))

    def student_forward(self, x, samples, arch: Arch, record: list):
        """``(dense head outputs, task loss)`` of the path: the detector's
        own ``loss``, the head's outputs read by a forward hook."""
        self.backbone.set_path(arch)
        captured: list = []
        handle = self.kd_head.register_forward_hook(
            lambda m, i, o: captured.append(o))
        try:
            losses = self.detector.loss(x, samples)
        finally:
            handle.remove()
        task, _ = self.detector.parse_losses(losses)
        self._task_value = task.detach()
        return captured[0], task

    def distill_term(self, x, student, teacher: Arch, record: list):
        """Eq. 5's KD on detection (module doc of det_distill)."""
        head = self.kd_head
        with torch.no_grad(), bn_batch_stats(self):
            t_out = self._head_outputs(x, teacher)
        temp = self.distill_cfg['temperature']
        kd = dense_cls_kd(student[0], t_out[0], head.cls_out_channels,
                          head.use_sigmoid_cls, temp)
        if self.distill_cfg['box']:
            kd = kd + self.distill_cfg['box_weight'] * box_distribution_kd(
                student[1], t_out[1], head.reg_max, temp)
        return kd

    @torch.no_grad()
    def match_outputs(self, x, archs: Sequence[Arch]) -> list:
        """Eq. 4's inputs: per-class pooled head probabilities of each path
        on ``x`` (no grad, BN on the batch statistics of ``x``)."""
        head, out = self.kd_head, []
        with bn_batch_stats(self):
            for arch in archs:
                cls_scores = self._head_outputs(x, arch)[0]
                out.append(pooled_scores(
                    cls_scores, head.cls_out_channels, head.num_classes,
                    head.use_sigmoid_cls, self.match_cfg['pool']))
        return out

    def meta_risk(self, params: dict, arch: Arch, x_val, y_val):
        """R of Eq. 6: the detector's loss on a held-out batch with the
        path's backbone, neck and head weights replaced by ``params``."""
        with bn_batch_stats(self):
            losses = functional_call(self, params, (x_val, y_val),
                                     dict(mode='loss', arch=arch))
        return self.detector.parse_losses(losses)[0]

    def train_score(self, student, y) -> float:
        """Minus the detector's training-batch loss (rank mean): the sigma
        screen's reference, higher is better."""
        value = self._task_value.clone().reshape(1)
        all_reduce_mean([value])
        return float(-value[0])

    def path_parameters(self, arch: Arch) -> dict:
        """Every trainable weight of the path's detector: the path's
        backbone part, the neck and the heads (Eq. 6)."""
        params = self.backbone.path_parameters(arch, 'detector.backbone.')
        params.update({f'detector.{n}': p
                       for n, p in self.head.named_parameters()})
        return {n: p for n, p in params.items() if p.requires_grad}

    def path_bn_buffers(self, arch: Arch) -> list[torch.Tensor]:
        return running_stats([m for _, part in
                              self.backbone.path_modules(arch)
                              for m in part.modules()] +
                             list(self.head.modules()))

    def forward(self, inputs: torch.Tensor, data_samples=None,
                mode: str = 'tensor', arch=None):
        """The detector with ``arch`` (default :meth:`selected_arch`)
        active: ``loss`` its loss dict, ``predict`` its predictions (BN on
        batch statistics, as scoring), ``tensor`` its raw outputs."""
        if arch is None:
            arch = self.selected_arch()
        elif isinstance(arch, str):
            arch = self.parse_arch(arch)
        self.backbone.set_path(arch)
        if mode == 'loss':
            return self.detector.loss(inputs, data_samples)
        if mode == 'predict':
            with torch.no_grad(), bn_batch_stats(self):
                return self.detector.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.detector._forward(inputs, data_samples)
        raise ValueError(f'mode={mode!r}: allowed tensor, loss, predict')

    # ------------------------------------------------- Eq. 3: mAP scoring
    def _val_batch(self, i: int) -> tuple:
        if not self._val_batches:
            raise RuntimeError(self.missing_val_data)
        data = self.data_preprocessor(
            self._val_batches[i % len(self._val_batches)], False)
        return data['inputs'], data['data_samples']

    def attach_search_meta(self, metainfo: dict) -> None:
        """The held-out dataset's ``metainfo`` (classes), for the metric."""
        self.dataset_meta = dict(metainfo)

    def _evaluator(self) -> Evaluator:
        metric = DET_METRICS.build(copy.deepcopy(self.evaluator_cfg))
        evaluator = Evaluator(metric)
        if self.dataset_meta is not None:
            evaluator.dataset_meta = self.dataset_meta
        return evaluator

    @torch.no_grad()
    def val_map(self, arch: Arch) -> float:
        """Eq. 3's score of a path: the metric's ``score_key`` (COCO mAP)
        on the attached held-out subset, in %, identical on every rank
        (mmengine's Evaluator gathers the shards and broadcasts)."""
        if not self._val_batches:
            raise RuntimeError(self.missing_val_data)
        evaluator = self._evaluator()
        self.backbone.set_path(arch)
        with bn_batch_stats(self):
            for batch in self._val_batches:
                data = self.data_preprocessor(batch, False)
                evaluator.process(self.detector.predict(
                    data['inputs'], data['data_samples']))
        metrics = evaluator.evaluate(self._val_total())
        self.val_scored += 1
        if not metrics:  # CocoMetric: no detection at all on the subset
            return 0.  # (its logged "results ... empty"): an AP of 0
        if self.score_key not in metrics:
            raise KeyError(f'score_key={self.score_key!r}: the evaluator '
                           f'gives {", ".join(sorted(metrics))}')
        return 100. * float(metrics[self.score_key])

    def val_top1(self, arch: Arch) -> float:
        """The board's score of a path: :meth:`val_map` (mAP %)."""
        return self.val_map(arch)

    def val_top1_many(self, archs: Sequence[Arch]) -> list[float]:
        return [self.val_map(a) for a in archs]

    def confirm_top1(self, arch: Arch, need):
        score = self.val_map(arch)
        return score, score

    # ------------------------------------------------------------ export
    def export_parts(self, arch: Arch) -> dict:
        """What :func:`~cream_mm.search.export.export_arch` writes for the
        backbone (arch, retraining configs, backbone weights)."""
        text = format_arch(arch)
        size = self.space.input_size
        cost = arch_cost(arch, size, with_head=False)
        header = (f'# Searched by Cream on the detection objective: {text}\n'
                  f'# backbone {cost.flops / 1e6:.2f}M FLOPs (paper '
                  f'counting), {cost.macs / 1e6:.2f}M MACs, '
                  f'{cost.params / 1e6:.2f}M params at {size}px\n')
        return dict(
            text=text, size=None, child=self.backbone.export(arch),
            head=None, header=header,
            cls_model=f"model = dict(backbone=dict(arch='{text}'))\n",
            det_model=(f"model = dict(backbone=dict(arch='{text}', "
                       "init_cfg=None))\n"),
            cost=dict(flops=cost.flops, macs=cost.macs, params=cost.params))

    def child_detector_cfg(self, arch: Arch) -> dict:
        """The searched detector's model config: the search's detector with
        the path's fixed :class:`CreamNet` as backbone (same out_indices,
        frozen_stages, norm_eval)."""
        cfg = copy.deepcopy(self.detector_cfg)
        bb = self.backbone
        cfg['backbone'] = dict(bb.backbone_cfg(arch),
                               out_indices=tuple(bb.out_indices),
                               frozen_stages=bb.frozen_stages,
                               norm_eval=bb.norm_eval, init_cfg=None)
        return cfg

    def child_detector_state(self, arch: Arch) -> dict:
        """The searched detector's weights, device-free: ``backbone.*`` the
        fixed child's keys (``CreamSupernet.export``), the rest the
        search's neck and heads."""
        child = self.backbone.export(arch)
        state = {f'backbone.{k}': v.detach().cpu().contiguous()
                 for k, v in child.state_dict().items()}
        state.update({k: v.detach().cpu().contiguous()
                      for k, v in self.detector.state_dict().items()
                      if not k.startswith('backbone.')})
        return state

    def export_detector(self, arch: Arch, out, name: str,
                        det_base: str) -> dict:
        """Write ``<name>_detector.py`` (the searched detector, the data and
        schedule of ``det_base``) and ``<name>_detector.pth`` (its inherited
        weights); returns their paths and the detector's MACs."""
        from .precision import refuse_nonfinite
        state = self.child_detector_state(arch)
        weights = out / f'{name}_detector.pth'
        refuse_nonfinite(state.items(), f'export of {weights}')
        torch.save(dict(state_dict=state, meta=dict(arch=format_arch(arch))),
                   weights)
        model = _plain(self.child_detector_cfg(arch))
        if 'model' in Config.fromfile(det_base):  # replace, do not merge
            model = dict(_delete_=True, **model)
        text = (f'# The detector searched by Cream: {format_arch(arch)}\n'
                f"_base_ = ['{det_base}']\n"
                f'custom_imports = dict(imports=[\'cream_mm\'], '
                f'allow_failed_imports=False)\n'
                f'model = {model!r}\n'
                f"# the search's weights (backbone, neck, heads):\n"
                f"# load_from = '{weights.resolve()}'\n")
        path = out / f'{name}_detector.py'
        path.write_text(text)
        return dict(detector_config=str(path.resolve()),
                    detector_inherited=str(weights.resolve()),
                    detector_macs=self.detector_macs(arch))

    def board_table(self) -> list[dict]:
        """The board as rows, each with the whole detector's multiply-adds
        at the detection input size (``detector_gmacs``, mmengine's traced
        counter; None for a two-stage detector) beside the backbone FLOPs
        the board's cost counts (``flops``, as DetNAS and mmrazor count)."""
        rows = super().board_table()
        cache = self.__dict__.setdefault('_det_macs_cache', {})
        for r in rows:
            if r['arch'] not in cache:
                macs = self.detector_macs(self.sampler.parse(r['arch']))
                cache[r['arch']] = None if macs is None else macs / 1e9
            r['detector_gmacs'] = cache[r['arch']]
        return rows

    @torch.no_grad()
    def detector_macs(self, arch: Arch, size: int | None = None
                      ) -> float | None:
        """Multiply-adds of the whole detector (backbone, neck, heads) with
        the path at ``size`` (default the space's input size): mmengine's
        traced counter, beside the backbone FLOPs of the board. None for a
        two-stage detector (its dense forward needs image metas; count it
        with ``tools/get_flops.py`` on the exported config)."""
        from mmengine.analysis import FlopAnalyzer
        size = size or self.space.input_size
        self.backbone.set_path(arch)

        class _Dense(nn.Module):
            def __init__(self, det):
                super().__init__()
                self.det = det

            def forward(self, x):
                return self.det._forward(x)
        if not hasattr(self.detector, 'bbox_head'):
            return None  # a two-stage forward needs image metas
        p = next(self.detector.parameters())
        x = torch.zeros(1, 3, size, size, device=p.device, dtype=p.dtype)
        training = self.training
        self.eval()
        try:
            analyzer = FlopAnalyzer(_Dense(self.detector), (x, ))
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            return float(analyzer.total())
        finally:
            self.train(training)


def _plain(obj):
    """ConfigDicts as plain dicts / lists (a config file's literal)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_plain(v) for v in obj)
    return obj


__all__ = ['DetCreamSearch', 'DET_SCREENS']
