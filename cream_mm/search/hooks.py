"""``CreamSearchHook``: data, observability and the end of the search.

* before training: builds the held-out search-validation loader
  (``search_val_dataloader``, e.g. 2,048 images of ``search_val``) and
  attaches its batches to the model (board scoring, Eq. 6);
* every ``log_interval`` iterations: logs the board (arch, FLOPs, score);
* every ``plot_interval`` iterations and at the end: writes
  ``board.json`` (strict JSON: ``null`` for an unscored path, every FLOPs
  number in MFLOPs -- ms for a latency cost -- as its ``flops_unit``
  says) and ``pareto.png`` (accuracy vs cost of every scored path, board
  highlighted) into
  ``<work_dir>/search``;
* after training: the final selection -- ``final='board'`` evaluates the K
  board paths on ``final_dataloader`` and takes the best (Alg. 1 line 14,
  on held-out data: a loader that overlaps the board's scoring subset, or
  none at all, re-scores the board on the images that admitted its paths
  and favours lucky scores; refused with ``final_overlap='error'``, the
  default, logged as a warning with ``'warn'``); ``final='evolution'`` runs the SPOS evolution
  (Tab. 1 #1/#6); any final search registered with
  :func:`~cream_mm.search.finals.register_final` (``'pareto'``,
  ``'nsga2'``, ...) runs by name -- then exports arch string, configs and
  inherited weights.

Any search algorithm of the protocol (Cream, sandwich, K-shot) works with
it (registered also as ``SupernetSearchHook``): models without a board
skip the board logging and ``final='board'``; their final rows are saved as
``<final>.json`` / ``<final>.png`` (front highlighted for ``'pareto'``);
models with ``attach_calib`` (BN re-calibration before scoring) get
``calib_batches`` batches of ``calib_dataloader`` (default: the training
loader's config).
"""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import torch
from mmengine.dist import get_rank, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from .export import export_arch, select_from_board
from .finals import FINAL_SEARCHES, run_final
from .precision import refuse_nonfinite
from .runtime import search_state_digest, to_cpu

#: finals of the hook itself; every registered final search is allowed too
FINALS = ('board', 'evolution', 'none')
#: the unit of every ``flops`` in ``board.json`` (1e6 of the search's
#: ``flops_metric``, the paper's FLOPs counting by default)
BOARD_FLOPS_UNIT = 'MFLOPs'


def json_finite(obj):
    """``obj`` with every non-finite float (an unscored path's ``-inf``)
    replaced by None: strict JSON, readable by any parser."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_finite(v) for v in obj]
    return obj


def _score_name(model) -> str:
    """What the board's scores are (top-1; mAP for a detection search)."""
    return getattr(model, 'score_name', 'top-1')


#: what the final selection does when its data overlaps the scoring subset
OVERLAP_POLICIES = ('error', 'warn')


@HOOKS.register_module()
class CreamSearchHook(Hook):
    """See module docstring.

    Args:
        search_val_dataloader (dict): loader of the held-out subset
            (default: the config's root key of that name).
        final_dataloader (dict): loader for the final selection (default:
            root key ``final_dataloader``, else the search subset).
        final_overlap: ``'error'`` (default) refuses ``final='board'``
            when the final data is the search subset or overlaps it (by
            config: :func:`~cream_mm.datasets.ranges_overlap`); ``'warn'``
            logs a warning and selects anyway. Images shared by the loaded
            final and scoring batches are counted after training (warned,
            and written to ``board.json`` as ``final_overlap``).
        log_interval, plot_interval: iterations (0 = never / end only).
        final: ``'board'``, ``'none'`` or a registered final search
            (``'evolution'``, ``'pareto'``, ``'nsga2'``, ...).
        evolution (dict): :class:`EvolutionSearch` arguments.
        final_args (dict): arguments of any other final search (e.g.
            :class:`~cream_mm.search.pareto.ParetoSearch`'s).
        calib_dataloader (dict): loader of the BN re-calibration batches
            (default: root key ``calib_dataloader``, else
            ``train_dataloader``).
        export (dict): :func:`export_arch` arguments (``cls_base``,
            ``det_base``, ``name``).
    """
    priority = 'NORMAL'

    def __init__(self, search_val_dataloader: dict | None = None,
                 final_dataloader: dict | None = None,
                 log_interval: int = 50, plot_interval: int = 0,
                 final: str = 'board', evolution: dict | None = None,
                 export: dict | None = None, final_args: dict | None = None,
                 calib_dataloader: dict | None = None,
                 final_overlap: str = 'error'):
        allowed = ('board', 'none', *FINAL_SEARCHES)
        if final not in allowed:
            raise ValueError(f'final={final!r}: allowed '
                             f'{", ".join(map(repr, allowed))}')
        if final_overlap not in OVERLAP_POLICIES:
            raise ValueError(f'final_overlap={final_overlap!r}: allowed '
                             f'{", ".join(map(repr, OVERLAP_POLICIES))}')
        self.final_overlap = final_overlap
        self.final_args = dict(final_args or {})
        self.calib_cfg = calib_dataloader
        self.val_cfg, self.final_cfg = search_val_dataloader, final_dataloader
        self.log_interval, self.plot_interval = log_interval, plot_interval
        self.final, self.evolution = final, dict(evolution or {})
        self.export = dict(export or {})

    @staticmethod
    def _model(runner):
        m = runner.model
        return m.module if is_model_wrapper(m) else m

    def _out(self, runner) -> Path:
        out = Path(runner.work_dir) / 'search'
        out.mkdir(parents=True, exist_ok=True)
        return out

    def _load(self, runner, cfg) -> list:
        loader = Runner.build_dataloader(cfg, seed=runner.seed)
        model = self._model(runner)
        if hasattr(model, 'attach_search_meta'):  # classes of the metric
            model.attach_search_meta(loader.dataset.metainfo)
        return list(loader)

    def before_train(self, runner) -> None:
        # loaders may also sit at the config's root (short ablation deltas)
        self.val_cfg = self.val_cfg or runner.cfg.get('search_val_dataloader')
        self.final_cfg = self.final_cfg or runner.cfg.get('final_dataloader')
        model = self._model(runner)
        if self.final == 'board' and not getattr(model, 'use_board', False):
            raise ValueError(
                "final='board' needs use_board=True (a CreamSearch board); "
                f"{type(model).__name__} has none: use final='evolution' "
                'or another registered final search '
                f'({", ".join(map(repr, FINAL_SEARCHES))})')
        if self.final == 'board':
            self._check_final_data(runner)
        if self.val_cfg is not None:
            model.attach_search_val(self._load(runner, self.val_cfg))
        if hasattr(model, 'attach_calib') and getattr(
                model, 'recalibrate_bn', False):
            cfg = (self.calib_cfg or runner.cfg.get('calib_dataloader')
                   or runner.cfg.train_dataloader)
            loader = Runner.build_dataloader(cfg, seed=runner.seed)
            model.attach_calib(list(itertools.islice(
                loader, max(int(model.calib_batches), 1))))

    def _overlap(self, runner, text: str) -> None:
        if self.final_overlap == 'error':
            raise ValueError(text + " (or set final_overlap='warn')")
        runner.logger.warning(text)

    def _check_final_data(self, runner) -> None:
        """Alg. 1 line 14 selects on held-out data: refuse (or warn about)
        a final loader that is, or overlaps, the board's scoring subset."""
        if self.val_cfg is None:
            return
        if self.final_cfg is None:
            self._overlap(runner, (
                "final='board' without final_dataloader re-scores the board "
                'on the search subset that admitted its paths (favours '
                'lucky scores): give a final_dataloader disjoint from '
                "search_val_dataloader, e.g. dict(type='SeededSubset', "
                'offset=<the subset size>, ...) over the same dataset'))
            return
        from ..datasets import ranges_overlap
        if ranges_overlap(self.val_cfg['dataset'],
                          self.final_cfg['dataset']):
            self._overlap(runner, (
                'final_dataloader overlaps search_val_dataloader (the '
                "board's scoring subset): the final selection must use "
                'other images (SeededSubset ranges of one seed that do not '
                'intersect)'))

    @staticmethod
    def shared_images(batches: list, others: list) -> int:
        """Images (input tensors, by content) present in both lists of
        loaded batches."""
        import hashlib

        def keys(bs):
            return {hashlib.sha1(t.contiguous().numpy().tobytes()).digest()
                    for b in bs or [] for t in b['inputs']}
        return len(keys(batches) & keys(others))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the scored-path history (Pareto plot) across resumes; plain
        lists of str / float / int, so ``weights_only`` loads it. A model
        with non-finite weights is not saved (ValueError: the run stops,
        the checkpoints before stay the last good ones)."""
        it = checkpoint.get('meta', {}).get('iter', runner.iter)
        refuse_nonfinite(  # the board's unscored paths are -inf on purpose
            [(k, v) for k, v in checkpoint.get('state_dict', {}).items()
             if not k.startswith('board.')],
            f'checkpoint at iteration {it} (not written)')
        if hasattr(self._model(runner), 'history'):
            checkpoint['search_history'] = [list(h) for h in
                                            self._model(runner).history]

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = self._model(runner)
        if not hasattr(model, 'history'):
            return
        model.history.clear()
        model.history.extend(tuple(h) for h in
                             checkpoint.get('search_history', []))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        model = self._model(runner)
        if not getattr(model, 'use_board', False):
            return
        if self.every_n_train_iters(runner, self.log_interval) if \
                self.log_interval else False:
            rows = model.board_table()
            unit = getattr(getattr(model, 'table', None), 'unit',
                           BOARD_FLOPS_UNIT)
            runner.logger.info(f'board ({_score_name(model)} %, {unit}):\n'
                               + '\n'.join(
                f"  {r['score']:6.2f}  {r['flops']:8.2f}  {r['arch']}"
                for r in rows))
        if self.plot_interval and self.every_n_train_iters(
                runner, self.plot_interval):
            self.write_board(runner)

    def write_board(self, runner, extra: dict | None = None) -> None:
        """``board.json`` (strict JSON: ``null`` for an unscored path; every
        ``flops`` in the unit named by ``flops_unit``) and ``pareto.png``;
        ``extra['final']`` rows (absolute FLOPs) are written in that unit
        too."""
        if not is_main_process():
            return
        model = self._model(runner)
        out = self._out(runner)
        extra = dict(extra or {})
        table = getattr(model, 'table', None)
        scale = getattr(table, 'scale', 1e6)
        if 'final' in extra:
            extra['final'] = [dict(r, flops=r['flops'] / scale)
                              for r in extra['final']]
        data = dict(iter=runner.iter,
                    flops_unit=getattr(table, 'unit', BOARD_FLOPS_UNIT),
                    flops_metric=getattr(table, 'metric', 'flops'),
                    board=model.board_table(),
                    scored=[dict(arch=a, flops=f / scale, score=s, iter=i)
                            for a, f, s, i in model.history], **extra)
        (out / 'board.json').write_text(
            json.dumps(json_finite(data), indent=1, allow_nan=False))
        plot_pareto(data['scored'], [r for r in data['board']
                                     if math.isfinite(r['score'])],
                    out / 'pareto.png',
                    title=f'Cream search, iter {runner.iter}',
                    xlabel=getattr(table, 'axis_label', None))

    def after_train(self, runner) -> None:
        model = self._model(runner)
        if self.final == 'none':
            return
        batches = (self._load(runner, self.final_cfg)
                   if self.final_cfg is not None else None)
        extra = {}
        if self.final == 'board':
            shared = (self.shared_images(batches, model._val_batches)
                      if batches is not None else None)
            if shared:
                runner.logger.warning(
                    f'final selection: {shared} of its images are also in '
                    "the board's scoring subset: the choice favours paths "
                    'scored lucky on them')
            extra['final_overlap'] = shared
            rows = select_from_board(model, batches)
        else:
            if batches is not None:
                model.attach_search_val(batches)
            args = (dict(self.evolution, **self.final_args)
                    if self.final == 'evolution' else self.final_args)
            rows = run_final(self.final, model, **args)
        best = model.sampler.parse(rows[0]['arch'])
        runner.logger.info(f'final selection ({self.final}): '
                           f"{rows[0]['arch']} {_score_name(model)} "
                           f"{rows[0]['top1']:.2f}")
        if getattr(model, 'use_board', False):
            self.write_board(runner, dict(final=rows, **extra))
        elif not hasattr(model, 'board') and is_main_process():
            from .pareto import save_front
            table = getattr(model.sampler, 'table', None)
            save_front(rows, self._out(runner), name=self.final,
                       title=f'{type(model).__name__}: final {self.final}',
                       scale=getattr(table, 'scale', 1e6),
                       xlabel=getattr(table, 'axis_label', None))
        if is_main_process():
            export_arch(model, best, self._out(runner),
                        extra=dict(final=self.final, ranking=rows[:20]),
                        **self.export)


# the same hook under an algorithm-neutral name (sandwich, K-shot configs)
HOOKS.register_module(name='SupernetSearchHook', module=CreamSearchHook)


@HOOKS.register_module()
class SearchDigestHook(Hook):
    """Per-iteration fingerprints of the search state, one JSON line per
    iteration in ``<work_dir>/search/digest_rank<r>.jsonl`` (every rank):
    the sampled path, the teacher and rho, the board (arch, FLOPs, score),
    this rank's training-batch CE, and SHA-1 digests of the supernet
    parameters and buffers, board, meta network, sampler generator, counters
    and optimiser states (:func:`search_state_digest`). Two ranks of a DDP
    job -- or a resumed and an uninterrupted run -- must write identical
    lines but for ``ce_local``. With ``save_final``, each rank also saves
    its final state (``state_rank<r>.pth``: model ``state_dict`` and
    optimiser state) for an exact comparison.
    """
    priority = 'LOWEST'

    def __init__(self, interval: int = 1, save_final: bool = False):
        self.interval, self.save_final = int(interval), bool(save_final)

    def _file(self, runner) -> Path:
        out = Path(runner.work_dir) / 'search'
        out.mkdir(parents=True, exist_ok=True)
        return out / f'digest_rank{get_rank()}.jsonl'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        model = CreamSearchHook._model(runner)
        outputs = outputs or {}
        # sandwich: max CE; detection search: the detector's task loss
        ce = outputs.get('ce', outputs.get('loss_max',
                                           outputs.get('task_loss')))
        board = model.board_table() if hasattr(model, 'board_table') else []
        row = dict(iter=runner.iter + 1, **model.last_step,
                   board=[[r['arch'], r['flops'], r['score']]
                          for r in board],
                   ce_local=float(ce) if ce is not None else None,
                   digest=search_state_digest(model, runner.optim_wrapper))
        with open(self._file(runner), 'a') as f:
            f.write(json.dumps(row) + '\n')

    def after_train(self, runner) -> None:
        if not self.save_final:
            return
        model = CreamSearchHook._model(runner)
        torch.save(to_cpu(dict(state_dict=model.state_dict(),
                               optimizer=runner.optim_wrapper.state_dict())),
                   Path(runner.work_dir) / f'state_rank{get_rank()}.pth')


def plot_pareto(scored: list[dict], board: list[dict], path,
                title: str = '', highlight: str = 'board',
                xlabel: str | None = None) -> None:
    """Accuracy vs cost (``flops`` of the rows, in the unit ``xlabel``
    names: MFLOPs by default, ms for a latency cost) of all scored paths,
    board (or front) paths highlighted (``highlight``: their legend
    label)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if scored:
        ax.scatter([r['flops'] for r in scored], [r['score'] for r in scored],
                   s=6, c='0.6', label='scored paths')
    ax.scatter([r['flops'] for r in board], [r['score'] for r in board],
               s=30, c='tab:red', label=highlight)
    ax.set_xlabel(xlabel or 'FLOPs (M, paper counting)')
    ax.set_ylabel('top-1 (%)')
    ax.set_title(title)
    ax.legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
