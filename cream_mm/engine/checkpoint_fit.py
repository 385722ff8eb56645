"""``CheckpointFitHook``: a checkpoint loaded by a ``Runner`` must fill the
model exactly.

mmengine's ``Runner.load_checkpoint`` (``load_from``, ``resume``) loads with
``strict=False``: missing keys, unused keys and shape mismatches are logged
and evaluation goes on with a partly random model.  This hook runs in
``after_load_checkpoint`` -- before the weights are copied -- and compares
the checkpoint's ``state_dict`` (``module.`` prefix removed, as mmengine
does) with the model's:

* ``strict=True`` (tools/test.py, every resume, Python-API default):
  any difference is a :class:`~cream_mm.models.checkpoint.
  CheckpointMismatchError` naming the file and listing the keys;
* ``strict=False`` (tools/train.py ``load_from`` for fine-tuning, or
  ``load_strict=False`` in a config / ``--non-strict``): the same listing as
  one warning, and an error only when not a single key of the model can be
  filled (a checkpoint of another architecture altogether).

:func:`cream_mm.engine.prepare_runner_cfg` adds it; see docs/checkpoints.md.
"""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import find_latest_checkpoint

from ..models.checkpoint import (CheckpointMismatchError, _shape,
                                 state_dict_problems, strip_prefix)


def checkpoint_source(runner) -> str:
    """The file ``runner`` is loading (``load_from`` or the latest
    checkpoint in ``work_dir`` for an automatic resume)."""
    path = getattr(runner, '_load_from', None)
    if path is None and getattr(runner, '_resume', False):
        path = find_latest_checkpoint(runner.work_dir)
    return str(path) if path else '<checkpoint>'


def fit_problems(model, checkpoint: dict) -> tuple[list[str], int]:
    """(problems, number of model keys the checkpoint fills with the right
    shape) for a ``Runner`` checkpoint dict loaded into ``model``."""
    state = checkpoint.get('state_dict', checkpoint)
    state = {strip_prefix(k, 'module.'): v for k, v in state.items()}
    target = model.state_dict()
    filled = sum(1 for k, v in target.items()
                 if k in state and _shape(state[k]) == _shape(v))
    return state_dict_problems(target, state), filled


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Refuse (``strict``) or list (not ``strict``) what a loaded checkpoint
    does not fill; resumes are checked with ``strict_resume``."""

    priority = 'VERY_HIGH'

    def __init__(self, strict: bool = True, strict_resume: bool = True):
        self.strict = bool(strict)
        self.strict_resume = bool(strict_resume)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        problems, filled = fit_problems(model, checkpoint)
        if not problems:
            return
        resuming = bool(getattr(runner, '_resume', False))
        strict = self.strict_resume if resuming else self.strict
        field = 'resume' if resuming else 'load_from'
        listing = '\n  - '.join(problems)
        head = (f"{field}: checkpoint '{checkpoint_source(runner)}' does not "
                f'fill {type(model).__name__} exactly:\n  - {listing}')
        if strict or filled == 0:
            why = ('not one model key is filled with the right shape (a '
                   'checkpoint of another architecture)' if filled == 0 and
                   not strict else 'this run loads checkpoints strictly')
            raise CheckpointMismatchError(
                f'{head}\n{why}. Only if this is meant (e.g. fine-tuning '
                'with another head), set load_strict=False in the config '
                '(tools/test.py: --non-strict). See docs/checkpoints.md.')
        print_log(f'{head}\nloading the {filled} matching tensors and '
                  'keeping the initialisation of everything listed '
                  '(load_strict=False).', logger='current', level=30)
