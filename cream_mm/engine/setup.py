"""One call that prepares a config for ``Runner.from_cfg`` (used by tools/).

:func:`prepare_runner_cfg` is what makes cream_mm's engine pieces automatic:
configs need no extra entries, ``tools/train.py`` and ``tools/test.py`` call
it right before building the ``Runner``.
"""
from __future__ import annotations

from .dist import cpu_model_wrapper_cfg, has_accelerator, init_cpu_dist
from .hooks import SafeCheckpointHook


def _is_safe_hook(hook) -> bool:
    if isinstance(hook, SafeCheckpointHook):
        return True
    kind = hook.get('type') if isinstance(hook, dict) else None
    if isinstance(kind, type):
        return issubclass(kind, SafeCheckpointHook)
    return isinstance(kind, str) and \
        kind.split('.')[-1] == 'SafeCheckpointHook'


def _add_fit_hook(hooks: list, cfg, load_strict: bool) -> None:
    """``CheckpointFitHook``: ``cfg.load_strict`` (if set) decides for
    ``load_from`` and resumes, else ``load_strict`` for ``load_from`` and
    strict for resumes."""
    if any(isinstance(h, dict) and str(h.get('type', '')).endswith(
            'CheckpointFitHook') for h in hooks):
        return
    explicit = cfg.get('load_strict', None)
    if explicit is not None and not isinstance(explicit, bool):
        raise ValueError(f'load_strict: {explicit!r}; allowed True, False '
                         '(or leave it unset)')
    hooks.append(dict(
        type='CheckpointFitHook',
        strict=load_strict if explicit is None else explicit,
        strict_resume=True if explicit is None else explicit))


def prepare_runner_cfg(cfg, load_strict: bool = True):
    """Adjust ``cfg`` (mmengine ``Config``) in place and return it.

    1. add ``dict(type='SafeCheckpointHook')`` to ``custom_hooks`` unless a
       ``SafeCheckpointHook`` is already in ``custom_hooks``/``default_hooks``,
       and an ``EvalProgressBarHook`` (progress bar over evaluation);
    1b. add a ``CheckpointFitHook``: a loaded checkpoint must fill the model
       exactly (``load_strict``: the default for ``load_from`` --
       tools/train.py passes ``False`` so fine-tuning lists what it skips;
       a ``load_strict`` key in ``cfg`` overrides it, resumes included);
    1c. for a model with a ``neck``: a ``NeckCheckHook`` (warns when the
       neck does not read the backbone's outputs at the heads' strides);
    2. for a distributed launcher on a CPU-only machine: initialise the gloo
       process group now (so ``Runner.setup_env`` skips mmengine's CUDA-only
       ``init_dist``) and set ``model_wrapper_cfg`` to
       ``CreamDistributedDataParallel``.  With an accelerator: untouched.
    """
    hooks = list(cfg.get('custom_hooks') or [])
    defaults = (cfg.get('default_hooks') or {}).values()
    if not any(_is_safe_hook(h) for h in [*hooks, *defaults]):
        hooks.append(dict(type='SafeCheckpointHook'))
    if not any(isinstance(h, dict) and str(h.get('type', '')).endswith(
            'EvalProgressBarHook') for h in hooks):
        hooks.append(dict(type='EvalProgressBarHook'))
    _add_fit_hook(hooks, cfg, load_strict)
    model = cfg.get('model')
    if isinstance(model, dict) and 'neck' in model and not any(
            isinstance(h, dict) and h.get('type') == 'NeckCheckHook'
            for h in hooks):
        hooks.append(dict(type='NeckCheckHook'))
    cfg.custom_hooks = hooks

    launcher = cfg.get('launcher', 'none') or 'none'
    if launcher != 'none' and not has_accelerator():
        dist_cfg = dict((cfg.get('env_cfg') or {}).get('dist_cfg') or {})
        init_cpu_dist(launcher, **dist_cfg)
        cfg.model_wrapper_cfg = cpu_model_wrapper_cfg(
            cfg.get('model_wrapper_cfg'),
            cfg.get('find_unused_parameters', False))
    return cfg
