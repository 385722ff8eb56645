"""``SearchTelemetryHook``: what a Cream search did, step by step, as JSON
lines in ``<work_dir>/search/telemetry.jsonl`` (the Tab. 1 study's "why"):

* every iteration: the sampled path and its FLOPs, the teacher and rho
  (``CreamSearch.last_step``), CE, KD and the training-batch top-1 (the
  ``train_step`` log), whether the teacher was the board's best path at
  the start of the step (the board of Eq. 3 before the step's update);
* every ``interval`` iterations (``probe`` rows): top-1 on the attached
  held-out subset of the K board paths and of ``probe_paths`` fixed random
  paths of the FLOPs range (a seeded copy of the sampler: the board's
  advantage over random paths, with the same weights and images), and the
  argmax agreement of the step's student and teacher on the subset's
  first batch (Eq. 5's teacher-student agreement).

Observation only: the probes use batch-statistics BN forwards without
gradients (:meth:`CreamSearch.shared_aux_logits`), leave the search's
counters, generators and weights untouched, so a run with the hook equals
one without. Rows written after the last checkpoint of a killed run are
written again on resume; readers keep the last row of each iteration
(:func:`read_telemetry`).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..arch import format_arch


def _float(v):
    if v is None:
        return None
    return float(v.detach()) if isinstance(v, torch.Tensor) else float(v)


@HOOKS.register_module()
class SearchTelemetryHook(Hook):
    """See module docstring.

    Args:
        interval: iterations between probe rows (0 = none).
        probe_paths: random in-range paths scored at each probe.
        probe_seed: seed of the probe paths' sampler copy.
    """
    priority = 'LOW'  # after CreamSearchHook attached the held-out data

    def __init__(self, interval: int = 50, probe_paths: int = 4,
                 probe_seed: int = 12345):
        self.interval, self.probe_n = int(interval), int(probe_paths)
        self.probe_seed = int(probe_seed)
        self._best = None

    @staticmethod
    def _model(runner):
        from .hooks import CreamSearchHook
        return CreamSearchHook._model(runner)

    def _file(self, runner) -> Path:
        out = Path(runner.work_dir) / 'search'
        out.mkdir(parents=True, exist_ok=True)
        return out / 'telemetry.jsonl'

    def before_train(self, runner) -> None:
        model = self._model(runner)
        sampler = model.sampler.reseeded(self.probe_seed)
        self.probes = [sampler.sample() for _ in range(self.probe_n)]

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        model = self._model(runner)
        board = getattr(model, 'board', None)
        self._best = (format_arch(model.board_arch(board.best()))
                      if getattr(model, 'use_board', False) and board
                      is not None and len(board) else None)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if not is_main_process():
            return
        model = self._model(runner)
        out = dict(outputs or {})
        step = dict(getattr(model, 'last_step', {}) or {})
        it = runner.iter + 1
        row = dict(kind='step', iter=it, path=step.get('path'),
                   teacher=step.get('teacher'), rho=step.get('rho'),
                   meta_update=step.get('meta_update'),
                   flops=_float(out.get('flops')), ce=_float(out.get('ce')),
                   kd=_float(out.get('kd')), top1=_float(out.get('top1')),
                   board_best=_float(out.get('board_best')),
                   teacher_is_best=(step.get('teacher') == self._best
                                    if step.get('teacher') and self._best
                                    else None))
        rows = [row]
        if self.interval and it % self.interval == 0 and \
                getattr(model, '_val_batches', None):
            rows.append(self.probe(model, it, step))
        with open(self._file(runner), 'a') as f:
            for r in rows:
                f.write(json.dumps(r) + '\n')

    @torch.no_grad()
    def probe(self, model, it: int, step: dict) -> dict:
        """Held-out top-1 of board and random paths; student-teacher
        agreement (no generator, counter or weight is touched)."""
        use_board = getattr(model, 'use_board', False)
        board = ([model.board_arch(k) for k in range(len(model.board))]
                 if use_board else [])
        archs = board + list(self.probes)
        correct = torch.zeros(len(archs))
        total = 0
        for x, y in self._batches(model):
            for k, logits in enumerate(model.shared_aux_logits(x, archs)):
                correct[k] += float((logits.argmax(1) == y).sum())
            total += len(y)
        acc = (100. * correct / max(total, 1)).tolist()
        agree = None
        if step.get('teacher') and step.get('path'):
            x, _ = next(iter(self._batches(model)))
            s, t = model.shared_aux_logits(
                x, [model.parse_arch(step['path']),
                    model.parse_arch(step['teacher'])])
            agree = 100. * float((s.argmax(1) == t.argmax(1)).float().mean())
        return dict(kind='probe', iter=it, board_top1=acc[:len(board)],
                    random_top1=acc[len(board):], agreement=agree)

    @staticmethod
    def _batches(model):
        for i in range(len(model._val_batches)):
            yield model._val_batch(i)


def read_telemetry(path) -> dict:
    """``{'step': [...], 'probe': [...]}`` rows of a telemetry file, the
    last row of each (kind, iter) kept, in iteration order."""
    rows: dict = {}
    p = Path(path)
    if p.is_file():
        for line in p.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
            rows[(r['kind'], r['iter'])] = r
    out: dict = dict(step=[], probe=[])
    for (kind, _), r in sorted(rows.items(), key=lambda kv: kv[0][1]):
        out.setdefault(kind, []).append(r)
    return out


__all__ = ['SearchTelemetryHook', 'read_telemetry']
