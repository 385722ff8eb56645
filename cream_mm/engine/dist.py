"""Distributed training on CPU-only machines (gloo), without patching mmengine.

mmengine 0.10's ``init_dist`` calls ``torch.cuda.set_device`` and
``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to DDP; both fail
without CUDA.  Here:

* :func:`init_cpu_dist` initialises the process group (gloo) from the
  launcher's environment *before* the ``Runner`` is built --
  ``Runner.setup_env`` skips ``init_dist`` when a group already exists;
* :class:`CreamDistributedDataParallel` (root ``MODEL_WRAPPERS``) drops
  ``device_ids``/``output_device`` for a module that lives on the CPU;
* :func:`cpu_model_wrapper_cfg` selects it in ``model_wrapper_cfg``.

With an accelerator (CUDA, NPU, MLU, MUSA, MPS) all of this stands aside and
mmengine's normal behaviour applies.
"""
from __future__ import annotations

import datetime
import os
import subprocess

import torch
import torch.distributed as torch_dist
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS

_DDP_TYPES = (None, 'MMDistributedDataParallel', MMDistributedDataParallel)


def has_accelerator() -> bool:
    """True when mmengine would run on a device other than the CPU."""
    return torch.cuda.is_available() or get_device() != 'cpu'


def _launcher_env(launcher: str, port=None) -> None:
    """Fill RANK/WORLD_SIZE/LOCAL_RANK/MASTER_* like mmengine's launchers."""
    env = os.environ
    if launcher == 'pytorch':  # torchrun sets everything
        missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR',
                               'MASTER_PORT') if k not in env]
        if missing:
            raise KeyError(f"launcher 'pytorch' needs the environment "
                           f'variables {missing} set by torchrun; start the '
                           'job with tools/dist_train.sh or torchrun')
        env.setdefault('LOCAL_RANK', '0')
    elif launcher == 'slurm':
        if port is not None:
            env['MASTER_PORT'] = str(port)
        env.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in env:
            env['MASTER_ADDR'] = subprocess.getoutput(
                f"scontrol show hostname {env['SLURM_NODELIST']} | head -n1")
        env['WORLD_SIZE'] = env['SLURM_NTASKS']
        env['RANK'] = env['SLURM_PROCID']
        env['LOCAL_RANK'] = env.get('SLURM_LOCALID', '0')
    elif launcher == 'mpi':
        env.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in env:
            raise KeyError("launcher 'mpi' needs MASTER_ADDR in the "
                           'environment')
        env['WORLD_SIZE'] = env['OMPI_COMM_WORLD_SIZE']
        env['RANK'] = env['OMPI_COMM_WORLD_RANK']
        env['LOCAL_RANK'] = env['OMPI_COMM_WORLD_LOCAL_RANK']
    else:
        raise ValueError(f'launcher: unknown launcher {launcher!r} (expected '
                         "'pytorch', 'slurm' or 'mpi')")


def init_cpu_dist(launcher: str, backend: str = 'gloo', timeout=None,
                  port=None, init_backend: str = 'torch', **kwargs) -> bool:
    """Initialise torch.distributed for a CPU-only job.

    Takes the keys of ``env_cfg.dist_cfg``.  Does nothing (returns False)
    for ``launcher='none'``, with an accelerator, or when a process group
    already exists.  ``nccl`` (the usual config value) is replaced by
    ``gloo``.
    """
    if launcher == 'none' or has_accelerator() or torch_dist.is_initialized():
        return False
    if init_backend != 'torch':
        raise ValueError(f'env_cfg.dist_cfg.init_backend={init_backend!r} is '
                         "not supported on CPU; use 'torch'")
    if backend not in ('gloo', 'mpi'):
        print_log(f"dist_cfg.backend={backend!r} needs CUDA; using 'gloo' "
                  'on this CPU-only machine', logger='current')
        backend = 'gloo'
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    _launcher_env(launcher, port)
    torch_dist.init_process_group(
        backend=backend, rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']), **kwargs)
    return True


def finish_dist() -> None:
    """End a distributed job cleanly: wait for every rank, then destroy the
    process group. Left to interpreter exit, gloo's threads can be torn
    down while another rank still talks to them ("terminate called without
    an active exception", exit -6) -- seen once in a 2-process test under
    load. No-op outside a process group."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()


@MODEL_WRAPPERS.register_module()
class CreamDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that also works for CPU modules.

    ``Runner.wrap_model`` always passes ``device_ids=[LOCAL_RANK]``; DDP
    requires ``device_ids=None`` for a CPU module, so they are dropped when
    the module's parameters are on the CPU and passed through otherwise.
    """

    def __init__(self, module, **kwargs):
        param = next(module.parameters(), None)
        if param is None or param.device.type == 'cpu':
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        super().__init__(module=module, **kwargs)


def cpu_model_wrapper_cfg(model_wrapper_cfg=None,
                          find_unused_parameters: bool = False):
    """``model_wrapper_cfg`` for CPU DDP.

    ``None`` becomes what mmengine builds by default (``broadcast_buffers=
    False``, ``find_unused_parameters`` from the config) with our type; a
    config of type ``MMDistributedDataParallel`` (or without type) gets our
    type; other wrappers (FSDP, DeepSpeed, ...) are returned unchanged.
    """
    if model_wrapper_cfg is None:
        return dict(type='CreamDistributedDataParallel',
                    broadcast_buffers=False,
                    find_unused_parameters=find_unused_parameters)
    if model_wrapper_cfg.get('type') in _DDP_TYPES:
        model_wrapper_cfg = dict(model_wrapper_cfg)
        model_wrapper_cfg['type'] = 'CreamDistributedDataParallel'
    return model_wrapper_cfg
