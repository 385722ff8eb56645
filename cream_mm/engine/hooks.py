"""``SafeCheckpointHook``: write checkpoints that ``weights_only`` can load.

``tools/train.py``/``tools/test.py`` add it automatically (see
:func:`cream_mm.engine.prepare_runner_cfg`); a Python-API ``Runner`` gets it
with ``custom_hooks=[dict(type='SafeCheckpointHook')]``.  Registered in
mmengine's root ``HOOKS``, so configs of any scope (``mmpretrain``,
``mmdet``) find it.
"""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import BaseLoop

from .safe_checkpoint import sanitize_checkpoint


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Sanitize every checkpoint right before it is written.

    ``before_save_checkpoint`` runs last (priority ``LOWEST``, after e.g.
    ``EMAHook``) and replaces numpy values / ``HistoryBuffer`` objects by
    allow-listed equivalents (:func:`sanitize_checkpoint`); ``HistoryBuffer``
    state round-trips exactly through ``torch.load``.

    ``after_load_checkpoint`` only undoes the one visible effect: numpy
    values in the dataset metainfo were saved as lists, so when the saved
    metainfo equals the sanitized metainfo of the current training dataset,
    the current one is put back -- mmengine's resume check then does not warn
    about a dataset change that did not happen.
    """

    priority = 'LOWEST'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key in list(checkpoint):
            checkpoint[key] = sanitize_checkpoint(checkpoint[key])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        loop = getattr(runner, '_train_loop', None)
        if not isinstance(loop, BaseLoop):  # never build a loop from here
            return
        current = getattr(loop.dataloader.dataset, 'metainfo', None)
        holders = [checkpoint.get('meta'),
                   checkpoint.get('message_hub', {}).get('runtime_info')]
        for holder in holders:
            if isinstance(holder, dict) and _same(
                    holder.get('dataset_meta'), current):
                holder['dataset_meta'] = current


def _same(saved, current) -> bool:
    if saved is None or current is None:
        return False
    try:
        return bool(sanitize_checkpoint(current) == saved)
    except (RuntimeError, ValueError, TypeError):  # e.g. tensor comparisons
        return False
