"""Cream: architecture search with prioritized paths (Alg. 1) as an mmengine
``BaseModel``. ``train_step`` is one iteration of Alg. 1:

1. sample a path alpha in the FLOPs range (line 3, :class:`PathSampler`);
2. phase 1 -- pick the teacher: the board path of largest matching degree
   ``rho = M(N(x, alpha_k) - N(x, alpha))`` (Eq. 4, ``matching='meta'``), the
   largest path inside the FLOPs range (``'fixed'``), a random board path
   (``'random'``) or none (``'none'``, SPOS);
3. phase 2 -- update ``w_alpha`` with ``CE + rho * KD`` (Eq. 5; the teacher's
   soft targets come from the board path's own shared weights, no grad),
   then score alpha and update the board by Eq. 3 (lines 7-8);
4. phase 3 -- every tau distillation steps (line 9), the meta update of
   Eq. 6: simulate ``w' = w - eta * grad_w(CE + rho(theta) KD)`` over *all*
   weights of the path, take ``R = CE(val; w')`` and descend ``dR/dtheta``.

Eq. 6's hypergradient: rho enters the simulated step linearly, so
``dw'/drho = -eta * grad_w KD(w)`` exactly and
``dR/dtheta = -eta <grad_w' R(w'), grad_w KD(w)> * drho/dtheta``. The code
builds ``w'`` with ``rho(theta)`` in the graph and lets autograd differentiate
``R`` through :func:`torch.func.functional_call` of the whole model with the
path's updated weights (stem, ``blocks.0``, chosen ops, tail, head) -- the
release only did this through the stem convolution (a reported bug).

Scoring (``scoring.on``): ``'val'`` (paper: top-1 on a held-out subset of
``val_images``, attached by :class:`~cream_mm.search.hooks.CreamSearchHook`)
or ``'train_batch'`` (release: top-1 on the training batch). With
``screen=True`` a path is confirmed on the subset only when its training-
batch accuracy is at least ``screen_sigma`` standard deviations above the
running mean of sampled paths; paths that can replace no board member
whatever their accuracy (FLOPs too high) are never scored. With
``screen='entry'`` a path must also look able to *enter*: its training-batch
top-1 plus the running held-out-minus-training offset of confirmed paths
(mean + ``entry_sigma`` standard deviations) must reach the board's entry
threshold (Eq. 3's worst competitor). Once the board is strong few sampled
paths can enter, so the held-out subset -- 2,048 images in the paper -- is
evaluated for few of them: the amortised cost of held-out scoring falls as
the search goes on instead of staying at the sigma screen's ~16 % of steps.

Distributed: every rank samples the same path (same generator state), the
matching degrees, scores, gradients and hypergradients are averaged over
ranks -- and so are the running BatchNorm statistics the path's training
forward updated -- so boards, meta networks and supernets (parameters and
buffers) stay identical; ``SearchDigestHook`` logs per-step fingerprints
that show it (``tests/test_search_distributed.py``).
"""
from __future__ import annotations

from collections import deque
from typing import Sequence

import torch
import torch.nn.functional as F
import mmpretrain.models  # noqa: F401  (registers ClsDataPreprocessor)
from mmpretrain.registry import MODELS
from torch.func import functional_call

from ..arch import Arch, format_arch
from ..models.autocast import no_autocast
from ..models.losses import (LOSS_FORMS, distill_loss, loss_coefficients,
                             soft_cross_entropy)
from ..models.matching import MetaMatchingNetwork
from .base import (SupernetAlgorithm, WarmupSchedule, bn_counters,
                   running_stats, sampler_kwargs)
from .board import PathBoard
from .cost import attach_cost_digest, build_cost
from .flops_table import FlopsTable
from .precision import all_finite, check_lr, unscaled_grads
from .runtime import (GradMeanHooks, _mode_modules, all_reduce_mean,
                      all_reduce_sum, bn_batch_stats, distributed)
from .sampler import PathSampler

MATCHINGS = ('none', 'fixed', 'random', 'meta')
SCORE_ON = ('val', 'train_batch')
SCREENS = (False, True, 'sigma', 'entry')


def _check(name, value, allowed):
    if value not in allowed:
        raise ValueError(f'{name}={value!r}: allowed '
                         f'{", ".join(map(repr, allowed))}')


@MODELS.register_module()
class CreamSearch(WarmupSchedule, SupernetAlgorithm):
    """Hypernetwork + board + meta network, trained by Alg. 1.

    Args:
        supernet (dict): config of a :class:`CreamSupernet`.
        head (dict): config of the classification head (``CreamClsHead``).
        flops_range: ``(min, max)`` FLOPs of sampled and board paths.
        flops_metric: ``'flops'`` (paper counting), ``'macs'``, ``'params'``.
        cost (dict): the search's cost, :func:`~cream_mm.search.cost.
            build_cost`: None / ``dict(type='flops')`` (default) or
            ``dict(type='latency', table=FILE, range=(min_ms, max_ms))``
            (a measured latency table replaces FLOPs in the sampler's
            range, Eq. 3's board, the final searches and the export).
        sampler (dict): ``op_prior``, ``fixed_depths`` of the
            :class:`PathSampler`; ``seed`` (default: the runner's seed, i.e.
            ``torch.initial_seed()`` when the model is built).
        matching: ``'none'`` | ``'fixed'`` | ``'random'`` | ``'meta'``.
        use_board: keep the prioritized path board (Tab. 1 "Priority Path").
        board (dict): ``num_paths`` (K), ``rule`` (``'paper'``/``'release'``).
        meta (dict): ``hidden`` (1000), ``interval`` (tau = 200),
            ``match_images`` (images of the batch fed to Eq. 4, 4 as the
            release's ``SUPERNET.SLICE``; None = the whole batch),
            ``risk_on``: data of Eq. 6's R, ``'val'`` (paper: held-out
            batches) or ``'train_batch'`` (no held-out data, the release).
        distill (dict): ``temperature``, ``weight`` (rho when not meta),
            ``kd_loss`` (a loss config replacing the soft cross entropy of
            Eq. 5, e.g. ``dict(type='AdaptiveAlphaDivergence')``),
            ``loss_form`` (``'paper'``/``'release'``), ``label_smoothing``.
        scoring (dict): ``on`` (``'val'``/``'train_batch'``), ``screen``
            (False, True = ``'sigma'``, or ``'entry'``), ``screen_sigma``,
            ``entry_sigma`` and ``calibration_min`` (confirmations before
            the entry screen acts), ``rescore_interval`` (0 = never),
            ``early_stop`` (stop a held-out confirmation once the path
            cannot reach the accuracy it needs to enter the board: the same
            board, fewer images; such paths are left out of ``history``).
        warmup (dict): ``iters`` and/or ``epochs`` of plain single-path
            training before distillation and board updates (release: 20
            epochs).
        channels_last: keep weights and inputs in NHWC memory format (the
            same computation; ~1.5x faster convolutions on x86 CPUs).
        data_preprocessor (dict): mmpretrain data preprocessor.
        nonfinite_patience: see :class:`SupernetAlgorithm`.
    """

    def __init__(self, supernet: dict, head: dict,
                 flops_range: Sequence[float | None] = (None, None),
                 flops_metric: str = 'flops', sampler: dict | None = None,
                 matching: str = 'meta', use_board: bool = True,
                 board: dict | None = None, meta: dict | None = None,
                 distill: dict | None = None, scoring: dict | None = None,
                 warmup: dict | None = None, channels_last: bool = False,
                 data_preprocessor: dict | None = None, init_cfg=None,
                 nonfinite_patience: int = 20, cost: dict | None = None):
        _check('matching', matching, MATCHINGS)
        super().__init__(supernet, head, channels_last, data_preprocessor,
                         init_cfg, nonfinite_patience)
        self.space = self.backbone.space
        self.table, cost_range = build_cost(
            cost, self.space, self.num_classes,
            getattr(getattr(self.head, 'conv_head', None), 'out_channels',
                    1280), self.backbone.in_channels,
            flops_metric, flops_range,
            flops_table=lambda: self._flops_table(flops_metric))
        attach_cost_digest(self, self.table)  # latency: resume checks it
        self.sampler = PathSampler(self.space, self.table, cost_range,
                                   **sampler_kwargs(sampler))
        self.matching, self.use_board = matching, bool(use_board)
        if matching in ('random', 'meta') and not use_board:
            raise ValueError(f'matching={matching!r} draws teachers from '
                             'the board: set use_board=True')
        self.board = PathBoard(num_layers=self.space.num_layers,
                               **(board or {}))
        self.meta_cfg = dict(hidden=1000, interval=200, match_images=4,
                             risk_on='val')
        self.meta_cfg.update(meta or {})
        _check('meta.risk_on', self.meta_cfg['risk_on'], SCORE_ON)
        self.meta_net = (MetaMatchingNetwork(self.match_dim,
                                             self.meta_cfg['hidden'])
                         if matching == 'meta' else None)
        self.distill_cfg = dict(temperature=1., weight=1.,
                                loss_form='paper', label_smoothing=0.)
        self.distill_cfg.update(distill or {})
        _check('distill.loss_form', self.distill_cfg['loss_form'],
               LOSS_FORMS)
        # any registered KD loss (student, teacher) -> scalar may replace
        # Eq. 5's soft cross entropy, e.g. AlphaNet's AdaptiveAlphaDivergence
        kd_cfg = self.distill_cfg.get('kd_loss')
        self.kd_loss = MODELS.build(kd_cfg) if kd_cfg else None
        self.score_cfg = dict(on='val', screen=False, screen_sigma=1.,
                              entry_sigma=2., calibration_min=10,
                              rescore_interval=0, early_stop=True)
        self.score_cfg.update(scoring or {})
        _check('scoring.on', self.score_cfg['on'], SCORE_ON)
        _check('scoring.screen', self.score_cfg['screen'], SCREENS)
        self._init_warmup(warmup)
        self._largest: Arch | None = None  # see ``largest``
        for name in ('iter', 'distill_steps', 'meta_steps', 'val_scored'):
            self.register_buffer(name, torch.zeros((), dtype=torch.long))
        # running mean/var of sampled paths' training-batch top-1 (screen)
        self.register_buffer('acc_stats', torch.tensor([0., 0., 0.],
                                                       dtype=torch.float64))
        # running mean/var of held-out minus training-batch top-1 of
        # confirmed paths (the entry screen's calibration)
        self.register_buffer('gap_stats', torch.tensor([0., 0., 0.],
                                                       dtype=torch.float64))
        self.eval_arch: Arch | None = None
        # every scored path (arch, FLOPs, score, iter), for the Pareto plot
        self.history: deque = deque(maxlen=20000)
        # what the last train_step did (path, teacher, rho, meta update)
        self.last_step: dict = {}
        if self.use_board:  # Alg. 1 line 1: random paths in the range
            for _ in range(self.board.num_paths):
                code, res, cost = self.sampler.sample_code()
                if self.board.index(code, res) is None:
                    self.board.add(code, res, cost)

    # ---------------------------------------------- what a task defines
    # (classification here; :class:`DetCreamSearch` the detector's)
    #: key of the training-batch score in the step's log
    train_score_key = 'top1'

    def _flops_table(self, metric: str) -> FlopsTable:
        """Flops(.) of Eq. 3: the path with the classification head."""
        return FlopsTable(self.space, metric, self.num_classes)

    @property
    def match_dim(self) -> int:
        """Width of Eq. 4's per-image matching input (the logits)."""
        return self.num_classes

    def _split_batch(self, data: dict) -> tuple:
        """``(inputs, targets)`` of a preprocessed batch."""
        return data['inputs'], self._labels(data['data_samples'])

    def student_forward(self, x, y, arch: Arch, record: list):
        """``(student output, task loss)``: the path's logits and CE."""
        student = self.forward_path(x, arch, record)
        return student, F.cross_entropy(
            student, y, label_smoothing=self.distill_cfg['label_smoothing'])

    def distill_term(self, x, student, teacher: Arch, record: list):
        """KD of Eq. 5: the student's logits against the board path's
        soft targets (shared weights, no grad)."""
        t_logits = self.aux_logits(x, teacher, record)
        return (self.kd_loss(student, t_logits)
                if self.kd_loss is not None else soft_cross_entropy(
                    student, t_logits, self.distill_cfg['temperature']))

    def match_outputs(self, x, archs: Sequence[Arch]) -> list:
        """Eq. 4's per-path outputs on the matching images, one no-grad
        forward under one normalisation (:meth:`shared_aux_logits`)."""
        return self.shared_aux_logits(x, archs)

    def meta_risk(self, params: dict, arch: Arch, x_val, y_val):
        """R of Eq. 6: CE on held-out data with the path's weights
        replaced by ``params`` (BN on batch statistics)."""
        with bn_batch_stats(self):
            logits = functional_call(self, params, (x_val, ),
                                     dict(mode='tensor', arch=arch))
        return F.cross_entropy(logits, y_val)

    def train_score(self, student, y) -> float:
        """The training-batch score of the sampled path (top-1, %)."""
        return self.batch_top1(student.detach(), y)

    # ------------------------------------------------------------- paths
    @property
    def largest(self) -> Arch:
        """The largest path inside ``flops_range`` (the teacher of fixed
        matching, Tab. 1 #3): students are drawn in the range, so the
        costliest path of the whole space would be a teacher no step
        trains. Computed on first use (a knapsack, ~1 s)."""
        if self._largest is None:
            self._largest = self.sampler.largest_in_range()
        return self._largest

    def board_arch(self, k: int) -> Arch:
        code, res, _, _ = self.board.entry(k)
        return self.space.decode(code, res)

    def _input_size(self, arch: Arch) -> int | None:
        """The path's resolution (:meth:`_resize`: SupernetAlgorithm)."""
        return arch.resolution

    def _units(self, arch: Arch) -> list:
        return self.backbone.path_units(arch, arch.resolution or 0)

    def forward_path(self, x: torch.Tensor, arch: Arch,
                     record: list | None = None) -> torch.Tensor:
        """Logits of a path (input resized to the path's resolution).

        ``record``: a list that receives ``(unit key, feature)`` after each
        unit of :meth:`CreamSupernet.path_units` (the student's features,
        reused by the teacher's forward on their common prefix).
        """
        feat = self._resize(x, arch)
        for key, unit in self._units(arch):
            feat = unit(feat)
            if record is not None:
                record.append((key, feat))
        return self.head((feat, ))

    @torch.no_grad()
    def aux_logits(self, x: torch.Tensor, arch: Arch,
                   prefix: list | None = None) -> torch.Tensor:
        """No-grad logits with BN on batch statistics (teachers, scoring).

        ``prefix``: the ``record`` of a training-mode forward of another
        path on the same ``x`` (BN on the same batch statistics); the units
        the two paths share are not recomputed -- the same values, exactly.
        """
        units = self._units(arch)
        start, feat = 0, None
        if prefix and self._prefix_reusable():
            while start < min(len(units), len(prefix)) and \
                    units[start][0] == prefix[start][0]:
                start += 1
            if start:
                feat = prefix[start - 1][1].detach()
        with bn_batch_stats(self):
            if feat is None:
                feat = self._resize(x, arch)
            for _, unit in units[start:]:
                feat = unit(feat)
            return self.head((feat, ))

    def _prefix_reusable(self) -> bool:
        """Training-mode features equal no-grad batch-statistics ones: all
        BN layers in training mode, no active dropout / drop path in the
        supernet."""
        bns, stochastic = _mode_modules(self.backbone)
        return (all(m.training for m in bns) and not any(
            m.training and getattr(m, 'p', getattr(m, 'drop_prob', 0)) > 0
            for m in stochastic))

    @torch.no_grad()
    def shared_aux_logits(self, x: torch.Tensor, archs: Sequence[Arch]
                          ) -> list[torch.Tensor]:
        """:meth:`aux_logits` of several paths on the same ``x``, each unit
        prefix computed once (stem and ``blocks.0`` always, and every
        common leading run of ops): a depth-first walk of the paths' trie.
        """
        chains = [self._units(a) for a in archs]
        out: list = [None] * len(archs)

        def walk(feat, depth, members):
            groups: dict = {}
            for i in members:
                groups.setdefault(chains[i][depth][0], []).append(i)
            for group in groups.values():
                f = chains[group[0]][depth][1](feat)
                if depth + 1 == len(chains[group[0]]):
                    logits = self.head((f, ))
                    for i in group:
                        out[i] = logits
                else:
                    walk(f, depth + 1, group)

        with bn_batch_stats(self):
            by_res: dict = {}
            for i, a in enumerate(archs):
                by_res.setdefault(a.resolution, []).append(i)
            for members in by_res.values():
                walk(self._resize(x, archs[members[0]]), 0, members)
        return out

    # forward (SupernetAlgorithm): ``loss`` the CE of a sampled path,
    # ``predict`` BN on batch statistics (as :meth:`aux_logits`)
    def parse_arch(self, text: str) -> Arch:
        """An arch string as the space's path (decoded from its code)."""
        return self.space.decode(*self.space.encode(text))

    def path_parameters(self, arch: Arch) -> dict:
        """Name -> trainable parameter of this model, every weight of a
        path (supernet part and head)."""
        params = self.backbone.path_parameters(arch, 'backbone.')
        params.update({f'head.{n}': p
                       for n, p in self.head.named_parameters()})
        return {n: p for n, p in params.items() if p.requires_grad}

    def path_bn_buffers(self, arch: Arch) -> list[torch.Tensor]:
        """Running mean / variance of every BatchNorm of a path (supernet
        part and head): what a training forward of the path updates."""
        return running_stats([m for _, part in
                              self.backbone.path_modules(arch)
                              for m in part.modules()] +
                             list(self.head.modules()))

    def selected_arch(self) -> Arch:
        """The path evaluated by val/test: ``eval_arch`` if set, else the
        board's best, else the largest path."""
        if self.eval_arch is not None:
            return self.eval_arch
        if self.use_board and len(self.board):
            return self.board_arch(self.board.best())
        return self.largest

    # ------------------------------------------------------ validation data
    # (attach_search_val, _val_batch, _labels, batch_top1:
    # SupernetAlgorithm)
    missing_val_data = (
        "scoring.on='val' and the meta update (Eq. 6) need held-out "
        'data: add CreamSearchHook with a search_val_dataloader or '
        'call attach_search_val()')

    @torch.no_grad()
    def val_top1(self, arch: Arch) -> float:
        """Top-1 (%) of a path on the attached subset (summed over ranks)."""
        return self.val_top1_many([arch])[0]

    @torch.no_grad()
    def val_top1_many(self, archs: Sequence[Arch]) -> list[float]:
        """:meth:`val_top1` of several paths, their common unit prefixes
        computed once per batch (:meth:`shared_aux_logits`)."""
        counts = torch.zeros(len(archs), 2, dtype=torch.float64)
        for i in range(len(self._val_batches or [None])):
            x, y = self._val_batch(i)
            for k, logits in enumerate(self.shared_aux_logits(x, archs)):
                counts[k, 0] += (logits.argmax(1) == y).sum().item()
                counts[k, 1] += len(y)
        all_reduce_sum(counts)
        self.val_scored += len(archs)
        return (100. * counts[:, 0] / counts[:, 1]).tolist()

    def _val_total(self) -> int:
        """Images of the attached subset over all ranks (cached)."""
        if getattr(self, '_val_count', None) is None:
            n = torch.tensor([float(sum(
                len(b['data_samples']) for b in self._val_batches or []))],
                dtype=torch.float64)
            self._val_count = int(all_reduce_sum(n)[0])
        return self._val_count

    @torch.no_grad()
    def confirm_top1(self, arch: Arch, need: float | None
                     ) -> tuple[float | None, float]:
        """``(score, seen)``: :meth:`val_top1`, stopped as soon as even a
        perfect rest of the subset could not lift the path to ``need`` (%)
        -- score None then; exact, a stopped path would not have entered
        the board -- and the top-1 on the images seen before stopping (the
        entry screen's calibration)."""
        if need is None or not self._val_batches:
            acc = self.val_top1(arch)
            return acc, acc
        total, correct, seen = self._val_total(), 0., 0.
        for i in range(len(self._val_batches)):
            x, y = self._val_batch(i)
            c = torch.tensor([(self.aux_logits(x, arch).argmax(1) == y)
                              .sum().item(), len(y)], dtype=torch.float64)
            all_reduce_sum(c)
            correct, seen = correct + float(c[0]), seen + float(c[1])
            if seen < total and 100. * (correct + total - seen) / total \
                    < need:
                self.val_scored += 1
                return None, 100. * correct / seen
        self.val_scored += 1
        return 100. * correct / seen, 100. * correct / seen

    # (past_warmup: WarmupSchedule)
    # ------------------------------------------------------ phase 1: Eq. 4
    def select_teacher(self, x, student_logits, arch: Arch, code, res):
        """Returns ``(teacher arch | None, rho, meta input | None)``.

        Eq. 4's logit differences ``N(x, alpha_k) - N(x, alpha)`` take both
        sides from one no-grad forward of the same ``match_images`` images
        with BN on their batch statistics (:meth:`shared_aux_logits`, the
        sampled path added to the board paths): the same images under the
        same normalisation, so a path matched with itself differs by
        exactly zero. ``student_logits`` (the training forward's, BN over
        the whole batch) are not compared with them.
        """
        if self.matching == 'none':
            return None, 0., None
        weight = float(self.distill_cfg['weight'])
        if self.matching == 'fixed':
            return (None, 0., None) if arch == self.largest else \
                (self.largest, weight, None)
        slots = [k for k in range(len(self.board))
                 if self.board.entry(k)[:2] != (tuple(code), res)]
        if not slots:
            return None, 0., None
        if self.matching == 'random':
            j = int(torch.randint(len(slots), (1, ),
                                  generator=self.sampler.generator))
            return self.board_arch(slots[j]), weight, None
        m = self.meta_cfg['match_images'] or len(x)
        *z_board, z_alpha = self.match_outputs(
            x[:m], [self.board_arch(k) for k in slots] + [arch])
        diffs = torch.stack(z_board) - z_alpha
        with torch.no_grad():
            rho = self.meta_net(diffs).double()
        all_reduce_mean([rho])  # identical teacher on every rank
        j = int(rho.argmax())
        return self.board_arch(slots[j]), float(rho[j]), diffs[j]

    # ----------------------------------------------------- phase 3: Eq. 6
    def meta_hypergradient(self, params: dict, g_ce, g_kd, meta_input,
                           rho_value: float, lr: float, arch: Arch,
                           x_val: torch.Tensor, y_val: torch.Tensor):
        """``dR/dtheta`` of Eq. 6 for the meta network's parameters.

        ``w' = w - lr * (a(rho) g_CE + b(rho) g_KD)`` over every weight of
        the path (``params``: name -> tensor of this model), ``R =
        CE(y_val, N(x_val; w'))``; rho is ``M(meta_input; theta)`` (its value
        replaced by ``rho_value``, the rank-averaged rho actually used).
        In fp32 outside autocast and any loss scaler (``g_ce`` / ``g_kd``
        unscaled): the second-order step is what AMP cannot round.
        """
        with no_autocast(x_val.device.type):  # fp32
            theta_dtype = self.meta_net.fc1.weight.dtype  # fp32 (fp64 in tests)
            rho_local = self.meta_net(meta_input.to(theta_dtype))
            rho = rho_local - rho_local.detach() + rho_value
            a, b = loss_coefficients(rho, self.distill_cfg['loss_form'])
            new = {n: p.detach() - lr * (a * gc + b * gk)
                   for (n, p), gc, gk in zip(params.items(), g_ce, g_kd)}
            risk = self.meta_risk(new, arch, x_val, y_val)
        theta = list(self.meta_net.parameters())
        return torch.autograd.grad(risk, theta), risk.detach()

    # ------------------------------------------------------------ Alg. 1
    def train_step(self, data, optim_wrapper):
        """One iteration of Alg. 1. Under AMP (the supernet's wrapper an
        ``AmpOptimWrapper``) every forward and loss -- student, Eq. 4's
        board paths, teacher, held-out scoring -- runs in its autocast
        context, every backward on the scaled loss; Eq. 6 takes the two
        unscaled gradients and runs its simulated step in fp32. A step whose
        loss is not finite (on any rank) updates nothing
        (:meth:`finite_step`)."""
        sup_ow, meta_ow = self._wrappers(optim_wrapper)
        with sup_ow.optim_context(self):
            data = self.data_preprocessor(data, True)
        x, y = self._split_batch(data)
        code, res, flops = self.sampler.sample_code()  # line 3
        arch = self.space.decode(code, res)
        active = self.past_warmup()
        log = {self.table.log_key: flops / self.table.scale}
        bn = self.path_bn_buffers(arch)
        # num_batches_tracked: also the no-grad forwards count batches
        counters = bn_counters(self.modules())
        bn_before = self.snapshot(bn + counters)

        record: list = []  # the student's features, reused by the teacher
        with sup_ow.optim_context(self):
            student, ce = self.student_forward(x, y, arch, record)
            teacher, rho, meta_input = (self.select_teacher(
                x, student, arch, code, res) if active else (None, 0., None))
            kd = None
            if teacher is not None:  # line 5: soft targets of the board path
                kd = self.distill_term(x, student, teacher, record)
            form = self.distill_cfg['loss_form']
            loss = distill_loss(ce, kd, rho, form)
        if not self.finite_step(loss, sup_ow, x):
            # the forward's BN update undone
            self.restore(bn + counters, bn_before)
            self.iter += 1
            self.last_step = dict(path=format_arch(arch), teacher=None,
                                  rho=0., meta_update=False, skipped=True)
            log.update(loss=loss.detach(), ce=ce.detach(), skipped=1.)
            return log
        if teacher is not None:
            self.distill_steps += 1
            log.update(kd=kd.detach(), rho=rho)
        params = self.path_parameters(arch)
        meta_due = (meta_input is not None and meta_ow is not None and
                    (int(self.distill_steps) - 1)
                    % int(self.meta_cfg['interval']) == 0)
        if meta_due:  # Eq. 6 needs the two gradients apart (fp32, unscaled)
            g_ce = unscaled_grads(sup_ow, ce, list(params.values()))
            g_kd = unscaled_grads(sup_ow, kd, list(params.values()))
        # under DDP the path's gradients are averaged over ranks in buckets
        # while the backward runs, then the running BN statistics the
        # student's forward updated (each rank saw its shard; the mean keeps
        # every rank's supernet buffers equal)
        averaging = GradMeanHooks(params.values())
        sup_ow.backward(loss)
        averaging.finish()
        if distributed():
            all_reduce_mean(bn)
        if meta_due:  # lines 9-11, before w moves (Eq. 6 uses w^(t))
            x_val, y_val = (self._val_batch(int(self.meta_steps))
                            if self.meta_cfg['risk_on'] == 'val' else (x, y))
            lr = check_lr(sup_ow, 'supernet')
            grads, risk = self.meta_hypergradient(
                params, g_ce, g_kd, meta_input, rho, lr, arch, x_val, y_val)
            all_reduce_mean(list(grads))
            # the same bytes on every rank: all skip or all step
            meta_due = all_finite(grads)
            if meta_due:
                check_lr(meta_ow, 'meta')
                for p, g in zip(self.meta_net.parameters(), grads):
                    p.grad = g
                meta_ow.step()
                meta_ow.zero_grad()
                self.meta_steps += 1
                log['meta_risk'] = risk
            else:
                log['meta_skipped'] = 1.
        if sup_ow.should_update():
            check_lr(sup_ow, 'supernet')
            sup_ow.step()  # AMP: unscale, clip, skip on inf (GradScaler)
            sup_ow.zero_grad()

        train_acc = self.train_score(student, y)
        if self.use_board and active:  # lines 7-8
            with sup_ow.optim_context(self):
                self.update_board(code, res, flops, arch, train_acc, x, y)
            log['board_best'] = float(self.board.scores[self.board.best()])
        self._track(train_acc)
        self.iter += 1
        self.last_step = dict(path=format_arch(arch), teacher=(
            format_arch(teacher) if teacher is not None else None),
            rho=float(rho), meta_update=bool(meta_due))
        log.update(loss=loss.detach(), ce=ce.detach())
        log[self.train_score_key] = train_acc
        return log

    def _wrappers(self, optim_wrapper):
        sup, meta = self._supernet_wrappers(
            optim_wrapper, 'meta', "optim_wrapper: CreamSearch needs the keys "
            "'supernet' and (for meta matching) 'meta'")
        if self.matching == 'meta' and meta is None:
            raise KeyError("matching='meta' needs an OptimWrapperDict with "
                           "a 'meta' wrapper (CreamOptimWrapperConstructor)")
        return sup, meta

    # ------------------------------------------------------ lines 7-8: Eq. 3
    def _track(self, acc: float, decay: float = 0.98,
               stats: torch.Tensor | None = None) -> None:
        """Running mean / variance (EMA) of ``acc`` into ``stats``: by
        default the training-batch top-1 of sampled paths (the screen's
        reference)."""
        stats = self.acc_stats if stats is None else stats
        n, mean, var = stats.tolist()
        if n == 0:
            mean, var = acc, 0.
        else:
            delta = acc - mean
            mean += (1 - decay) * delta
            var = decay * (var + (1 - decay) * delta * delta)
        stats.copy_(torch.tensor([n + 1, mean, var]))

    def _screened_out(self, train_acc: float,
                      need: float | None = None) -> bool:
        """Screen: confirm on the subset only clearly good paths (sigma),
        and with ``screen='entry'`` only paths whose calibrated training-
        batch top-1 can reach ``need``, the board's entry threshold."""
        mode = self.score_cfg['screen']
        if not mode:
            return False
        n, mean, var = self.acc_stats.tolist()
        if n >= 20 and train_acc < mean + \
                self.score_cfg['screen_sigma'] * var ** .5:
            return True
        if mode != 'entry' or need is None:
            return False
        n, gap, var = self.gap_stats.tolist()
        return (n >= self.score_cfg['calibration_min'] and train_acc + gap
                + self.score_cfg['entry_sigma'] * var ** .5 < need)

    def score(self, arch: Arch, x=None, y=None) -> float:
        """Accuracy used by Eq. 3: val subset, or training batch."""
        if self.score_cfg['on'] == 'val':
            return self.val_top1(arch)
        return self.batch_top1(self.aux_logits(x, arch), y)

    def update_board(self, code, res, flops, arch, train_acc, x, y) -> None:
        every = int(self.score_cfg['rescore_interval'])
        stale = self.board.unscored()
        if every and int(self.iter) % every == 0:
            stale = list(range(len(self.board)))
        if stale and self.score_cfg['on'] == 'val':
            for k, score in zip(stale, self.val_top1_many(
                    [self.board_arch(k) for k in stale])):
                self.board.set_score(k, score)
        for k in stale if self.score_cfg['on'] != 'val' else ():
            self.board.set_score(k, self.score(self.board_arch(k), x, y))
        on_board = self.board.index(code, res) is not None
        if not on_board and not self.board.could_replace(flops):
            return
        if self.score_cfg['on'] == 'train_batch':
            score = train_acc  # release: the training batch, pre-update
        else:
            need = self.board.entry_threshold(code, res, flops)
            if self._screened_out(train_acc, need):
                return
            score, seen = self.confirm_top1(
                arch, need if self.score_cfg['early_stop'] else None)
            self._track(seen - train_acc, stats=self.gap_stats)
            if score is None:  # could not enter: Eq. 3's outcome, cheaper
                return
        self.history.append((format_arch(arch), flops, score, int(self.iter)))
        self.board.update(code, res, flops, score)

    # ---------------------------------------------------------- reporting
    def board_table(self) -> list[dict]:
        """The board as rows (arch string, cost in the table's unit --
        MFLOPs, or ms for a latency cost -- and score), best first."""
        rows = [dict(arch=format_arch(self.board_arch(k)),
                     flops=self.board.entry(k)[2] / self.table.scale,
                     score=self.board.entry(k)[3])
                for k in range(len(self.board))]
        return sorted(rows, key=lambda r: (-r['score'], r['flops']))


__all__ = ['CreamSearch', 'MATCHINGS', 'SCORE_ON', 'SCREENS', 'distributed']
