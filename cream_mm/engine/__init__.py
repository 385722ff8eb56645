"""Engine pieces of cream_mm: safe checkpoints and CPU distributed training.

Importing this package (``import cream_mm`` does) registers
``SafeCheckpointHook``, ``CheckpointFitHook`` and ``NeckCheckHook``
(mmengine ``HOOKS``), ``CPUAmpOptimWrapper`` (``OPTIM_WRAPPERS``),
``CreamDistributedDataParallel``
(mmengine ``MODEL_WRAPPERS``), the ``weights_only`` allow-list
(:data:`SAFE_GLOBALS`) and the explicit-``weights_only`` loader for local
checkpoint paths.
"""
from .amp import AMP_TYPES, CPUAmpOptimWrapper
from .dist import (CreamDistributedDataParallel, cpu_model_wrapper_cfg,
                   finish_dist, has_accelerator, init_cpu_dist)
from .checkpoint_fit import CheckpointFitHook, fit_problems
from .hooks import SafeCheckpointHook
from .neck_check import NeckCheckHook, check_detector
from .progress import EvalProgressBarHook
from .safe_checkpoint import (SAFE_GLOBALS, CorruptCheckpointError,
                              UnsafeCheckpointError, check_checkpoint,
                              format_problem, install_local_loader,
                              register_safe_globals, safe_load,
                              sanitize_checkpoint, unsafe_globals)
from .setup import prepare_runner_cfg

register_safe_globals()
install_local_loader()

__all__ = [
    'AMP_TYPES', 'CPUAmpOptimWrapper',
    'SAFE_GLOBALS', 'UnsafeCheckpointError', 'SafeCheckpointHook',
    'CheckpointFitHook', 'CorruptCheckpointError', 'fit_problems',
    'format_problem', 'NeckCheckHook', 'check_detector',
    'CreamDistributedDataParallel', 'EvalProgressBarHook', 'check_checkpoint',
    'cpu_model_wrapper_cfg', 'finish_dist', 'has_accelerator', 'init_cpu_dist',
    'install_local_loader', 'prepare_runner_cfg', 'register_safe_globals',
    'safe_load', 'sanitize_checkpoint', 'unsafe_globals'
]
