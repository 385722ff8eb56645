"""Mixed precision and the non-finite-loss guard of the search algorithms.

Mixed precision is mmengine's: ``optim_wrapper.type='AmpOptimWrapper'``
(``tools/train.py --amp``) gives the supernet's wrapper an autocast context
(:meth:`~mmengine.optim.AmpOptimWrapper.optim_context`) and a loss scaler.
The helpers here apply that scaler where an algorithm runs several backward
passes or takes gradients with :func:`torch.autograd.grad` (what
``AmpOptimWrapper.backward`` does not see); on a plain ``OptimWrapper``
they are the identity. ``docs/amp.md`` lists what runs in which precision.

The guard (:class:`NonFiniteGuard`): a step whose loss is not finite on
some rank updates nothing (weights, BatchNorm statistics, board, meta or
simplex network) on any rank; after ``patience`` such steps in a row the
run stops with :class:`NonFiniteLossError`, naming the iteration and the
likely cause.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
from mmengine import dist
from mmengine.optim import AmpOptimWrapper

from .runtime import distributed


def is_amp(optim_wrapper) -> bool:
    """Whether ``optim_wrapper`` scales losses (an ``AmpOptimWrapper``)."""
    return isinstance(optim_wrapper, AmpOptimWrapper)


def scaled(optim_wrapper, loss: torch.Tensor) -> torch.Tensor:
    """``loss`` times the wrapper's loss scale (AMP), else ``loss``."""
    if is_amp(optim_wrapper):
        return optim_wrapper.loss_scaler.scale(loss)
    return loss


def backward_uncounted(optim_wrapper, loss: torch.Tensor) -> None:
    """The backward of :meth:`OptimWrapper.backward` (the loss scaled as
    there) without counting a step: one of several backward passes whose
    gradients accumulate into one update (the sandwich rule)."""
    scaled(optim_wrapper, loss).backward()


def unscaled_grads(optim_wrapper, loss: torch.Tensor,
                   params: Sequence[torch.Tensor],
                   retain_graph: bool = True) -> list[torch.Tensor]:
    """``d loss / d params`` in the parameters' dtype (fp32): under AMP the
    backward runs on the scaled loss (no fp16 underflow) and the gradients
    are divided by the scale (a power of two: exact). Non-finite values
    (an overflowing scale) are left for the caller to test. A parameter
    ``loss`` does not depend on gets a zero gradient (a detector's KD term
    reads no box-regression weight)."""
    grads = torch.autograd.grad(scaled(optim_wrapper, loss), list(params),
                                retain_graph=retain_graph, allow_unused=True,
                                materialize_grads=True)
    if not is_amp(optim_wrapper) or \
            not optim_wrapper.loss_scaler.is_enabled():
        return list(grads)
    inv = 1. / optim_wrapper.loss_scaler.get_scale()
    return [g * inv for g in grads]


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every value of ``tensors`` is finite (this rank only)."""
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def finite_on_every_rank(loss: torch.Tensor) -> bool:
    """One ``isfinite`` of a scalar loss, agreed over ranks (min of the
    flags: one non-finite rank skips the step everywhere)."""
    flag = torch.isfinite(loss.detach().float()).all().to(torch.float32)
    if distributed():
        dist.all_reduce(flag, op='min')
    return bool(flag)


class NonFiniteLossError(RuntimeError):
    """The search produced non-finite losses for too many steps."""


class NonFiniteGuard:
    """Counts steps skipped for a non-finite loss (``patience`` in a row
    stop the run). ``patience=0`` never stops (steps are still skipped)."""

    def __init__(self, patience: int = 20):
        if int(patience) < 0:
            raise ValueError(f'nonfinite_patience={patience}: must be >= 0')
        self.patience = int(patience)
        self.in_a_row = 0
        self.skipped = 0

    def ok(self, loss: torch.Tensor, it: int, what: str = 'loss',
           optim_wrapper=None, inputs: torch.Tensor | None = None) -> bool:
        """True when ``loss`` is finite on every rank; otherwise counts the
        skip and raises :class:`NonFiniteLossError` after ``patience`` in a
        row (``it``: the 0-based iteration; ``optim_wrapper`` and
        ``inputs``: looked at only then, to name the likely cause)."""
        if finite_on_every_rank(loss):
            self.in_a_row = 0
            return True
        self.in_a_row += 1
        self.skipped += 1
        if self.patience and self.in_a_row >= self.patience:
            lr = (float(optim_wrapper.optimizer.param_groups[0]['lr'])
                  if optim_wrapper is not None else None)
            raise NonFiniteLossError(self.message(it, what, lr, inputs))
        return False

    def message(self, it: int, what: str, lr: float | None,
                inputs: torch.Tensor | None) -> str:
        if lr is not None and not math.isfinite(lr):
            cause = f'the learning rate is {lr}'
        elif inputs is not None and not bool(torch.isfinite(inputs).all()):
            cause = 'the input batch holds non-finite values (check the data)'
        else:
            cause = ('the learning rate' + (f' ({lr:.4g})' if lr is not None
                                            else '') +
                     ' is likely too high (or the data holds non-finite '
                     'values)')
        return (f'the training {what} was non-finite for {self.in_a_row} '
                f'iterations in a row, the last at iteration {it + 1}; '
                f'those steps updated nothing; {cause}. Stopped by '
                f'nonfinite_patience={self.patience}; the checkpoints '
                'written before are kept.')


def check_lr(optim_wrapper, name: str) -> float:
    """The wrapper's first learning rate, refused when not finite (a step
    with it would make every weight non-finite)."""
    lrs = [float(g['lr']) for g in optim_wrapper.optimizer.param_groups]
    bad = [lr for lr in lrs if not math.isfinite(lr)]
    if bad:
        raise NonFiniteLossError(
            f'optim_wrapper.{name}: learning rate {bad[0]}; a step would '
            'make the weights non-finite (check optimizer.lr and the '
            'param_scheduler)')
    return lrs[0]


def nonfinite_names(named: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the floating-point tensors that hold a non-finite value."""
    return [n for n, t in named if torch.is_tensor(t)
            and t.is_floating_point() and not bool(torch.isfinite(t).all())]


def refuse_nonfinite(named: Iterable[tuple[str, torch.Tensor]],
                     what: str) -> None:
    """ValueError naming the non-finite tensors of ``named``, if any."""
    bad = nonfinite_names(named)
    if bad:
        more = f' and {len(bad) - 5} more' if len(bad) > 5 else ''
        raise ValueError(
            f'{what}: {len(bad)} tensors hold non-finite values '
            f'({", ".join(bad[:5])}{more}); the search diverged (see its '
            'log for non-finite losses; lower the learning rate)')
