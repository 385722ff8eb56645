"""A progress bar for evaluation (validation and test loops).

mmengine's loops log ``Iter(val) [i/N]`` only every ``logger.interval``
iterations; this hook draws mmengine's own ``ProgressBar`` on rank 0 over
the whole evaluation, so a user sees how far a (slow, CPU) evaluation is.
``tools/train.py`` and ``tools/test.py`` add it unless the config has one.
"""
import sys

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.utils import ProgressBar


@HOOKS.register_module()
class EvalProgressBarHook(Hook):
    """``ProgressBar`` over the val / test dataloader (rank 0 only)."""
    priority = 'VERY_LOW'

    def __init__(self, bar_width: int = 40):
        self.bar_width = bar_width
        self._bar = None

    def _start(self, runner, loader):
        if is_main_process() and loader is not None:
            self._bar = ProgressBar(len(loader), bar_width=self.bar_width,
                                    file=sys.stdout)

    def _tick(self):
        if self._bar is not None:
            self._bar.update()

    def _end(self):
        if self._bar is not None:
            self._bar.file.write('\n')
            self._bar.file.flush()
            self._bar = None

    def before_val_epoch(self, runner):
        self._start(runner, runner.val_loop.dataloader)

    def before_test_epoch(self, runner):
        self._start(runner, runner.test_loop.dataloader)

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None):
        self._tick()

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None):
        self._tick()

    def after_val_epoch(self, runner, metrics=None):
        self._end()

    def after_test_epoch(self, runner, metrics=None):
        self._end()
