"""cream_mm.engine: weights_only-safe checkpoints, CPU-DDP pieces, tools/."""
import builtins
import io
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
from conftest import free_port, toy_linear
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.registry import HOOKS
from mmengine.runner import Runner

import cream_mm  # noqa: F401
from cream_mm.engine import (SAFE_GLOBALS, CreamDistributedDataParallel,
                             UnsafeCheckpointError, cpu_model_wrapper_cfg,
                             init_cpu_dist, prepare_runner_cfg, safe_load,
                             sanitize_checkpoint, unsafe_globals)
from tools.test import main as run_test
from tools.train import main as run_train


# --------------------------------------------------------------- allow-list
def _name(g):
    return g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'


def assert_only_allow_listed(path):
    """The file's non-torch globals are all in SAFE_GLOBALS (checked with
    every user allow-list entry removed), never ``builtins.getattr``."""
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        needed = set(unsafe_globals(path))
    finally:
        torch.serialization.add_safe_globals(saved)
    assert needed <= {_name(g) for g in SAFE_GLOBALS}, needed
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in needed
    assert unsafe_globals(path) == []  # loads with cream_mm imported


def test_getattr_is_never_allow_listed():
    entries = [g[0] if isinstance(g, tuple) else g for g in SAFE_GLOBALS]
    assert builtins.getattr not in entries
    safe = torch.serialization.get_safe_globals()
    names = {g[1] for g in safe if isinstance(g, tuple)}
    assert builtins.getattr not in [g[0] if isinstance(g, tuple) else g
                                    for g in safe]
    assert not names & {'builtins.getattr', '__builtin__.getattr'}
    assert HistoryBuffer in safe and np.ndarray in safe  # registered


def test_sanitized_checkpoint_round_trips_exactly():
    buf = HistoryBuffer()
    for v in (1.5, 2.25, 3.0):
        buf.update(v, count=2)
    weights = OrderedDict(w=torch.ones(2))
    weights._metadata = OrderedDict(w=dict(version=1))
    meta = dict(eta=np.float64(1.25), palette=np.array([[1, 2]], np.uint8),
                classes=('a', 'b'), dtype=np.dtype('float32'))
    ckpt = dict(state_dict=weights, meta=meta,
                message_hub=dict(log_scalars=dict(loss=buf)))
    safe = sanitize_checkpoint(ckpt)
    assert isinstance(ckpt['meta']['eta'], np.float64)  # input untouched
    assert safe['state_dict'] is weights  # unchanged containers are shared
    f = io.BytesIO()
    torch.save(safe, f)
    f.seek(0)
    out = torch.load(f, weights_only=True)
    got = out['message_hub']['log_scalars']['loss']
    assert type(got) is HistoryBuffer and got.max_length == buf.max_length
    for a, b in [(got._log_history, buf._log_history),
                 (got._count_history, buf._count_history)]:
        assert isinstance(a, np.ndarray) and a.dtype == b.dtype
        assert np.array_equal(a, b)
    assert got.mean(2) == buf.mean(2)
    assert out['meta'] == dict(eta=1.25, palette=[[1, 2]], classes=('a', 'b'),
                               dtype='float32')
    assert out['state_dict']._metadata == weights._metadata


def test_plain_mmengine_checkpoint_is_refused_with_reason(tmp_path):
    """Unsanitized HistoryBuffers pickle their statistics methods through
    builtins.getattr -- this is why SafeCheckpointHook exists."""
    buf = HistoryBuffer()
    buf.update(1.0)
    path = str(tmp_path / 'plain.pth')
    torch.save(dict(message_hub=dict(log_scalars=dict(loss=buf))), path)
    assert 'builtins.getattr' in unsafe_globals(path)
    with pytest.raises(UnsafeCheckpointError, match='builtins.getattr'):
        safe_load(path)


class _Evil:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def test_arbitrary_code_pickle_is_refused(tmp_path, toy_configs, capsys):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, meta=_Evil(marker)), path)
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_load(path)
    assert 'system' in str(err.value) and path in str(err.value)
    assert isinstance(err.value, pickle.UnpicklingError)
    # mmengine's own loading path (CheckpointLoader '') is ours too
    from mmengine.runner.checkpoint import _load_checkpoint
    with pytest.raises(UnsafeCheckpointError):
        _load_checkpoint(path, map_location='cpu')
    # the tools refuse it up front, naming the argument
    with pytest.raises(SystemExit):
        run_test([toy_configs['toy_regression'], path,
                   '--work-dir', str(tmp_path / 'wd')])
    assert 'argument checkpoint' in capsys.readouterr().err
    assert not marker.exists()


# -------------------------------------------------------------- resume (a)
@HOOKS.register_module(force=True)
class InterruptAtEpoch(Hook):
    """Raise after the checkpoint of epoch ``epoch`` has been written."""

    priority = 'LOWEST'

    def __init__(self, epoch):
        self.epoch = epoch

    def after_train_epoch(self, runner):
        if runner.epoch + 1 == self.epoch:
            raise KeyboardInterrupt(f'interrupted after epoch {self.epoch}')


def _resume_cfg(path, work_dir, name, **extra):
    cfg = Config.fromfile(path)
    cfg.train_dataloader.sampler.shuffle = True
    cfg.optim_wrapper.optimizer.update(momentum=0.9, weight_decay=1e-3)
    cfg.param_scheduler = [
        dict(type='MultiStepLR', by_epoch=True, milestones=[1, 3], gamma=0.5)
    ]
    cfg.train_cfg.max_epochs = 4
    cfg.update(work_dir=work_dir, experiment_name=name, launcher='none',
               **extra)
    return prepare_runner_cfg(cfg)


def test_resume_equals_uninterrupted_run(tmp_path, toy_configs, capsys):
    toy = toy_configs['toy_regression']
    full = Runner.from_cfg(_resume_cfg(toy, str(tmp_path / 'a'), 'full'))
    full.train()

    part = _resume_cfg(toy, str(tmp_path / 'b'), 'part')
    part.custom_hooks.append(dict(type='InterruptAtEpoch', epoch=2))
    with pytest.raises(KeyboardInterrupt):
        Runner.from_cfg(part).train()
    assert_only_allow_listed(str(tmp_path / 'b' / 'epoch_2.pth'))
    resumed = Runner.from_cfg(
        _resume_cfg(toy, str(tmp_path / 'b'), 'resumed', resume=True))
    capsys.readouterr()
    resumed.train()
    # numpy metainfo was saved as lists; the hook keeps mmengine from
    # reporting a dataset change on resume
    assert 'dataset metainfo' not in ''.join(capsys.readouterr())

    assert resumed.iter == full.iter == 32 and resumed.epoch == 4
    for (k, a), b in zip(full.model.state_dict().items(),
                         resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    opt_a = full.optim_wrapper.optimizer.state_dict()['state']
    opt_b = resumed.optim_wrapper.optimizer.state_dict()['state']
    for i in opt_a:
        assert torch.equal(opt_a[i]['momentum_buffer'],
                           opt_b[i]['momentum_buffer'])
    for key in ('train/loss', 'train/lr'):  # message hub resumed exactly
        a = full.message_hub.get_scalar(key)._log_history
        b = resumed.message_hub.get_scalar(key)._log_history
        assert isinstance(b, np.ndarray) and b.dtype == a.dtype
        assert np.array_equal(a, b), key
    assert not torch.equal(full.model.fc.weight, toy_linear().weight)


# ---------------------------------------------------------------- CPU-DDP
def test_prepare_runner_cfg_adds_hook_once_and_defers_to_cuda(monkeypatch):
    cfg = Config(dict(launcher='pytorch', custom_hooks=[]))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    prepare_runner_cfg(prepare_runner_cfg(cfg))
    assert cfg.custom_hooks == [
        dict(type='SafeCheckpointHook'), dict(type='EvalProgressBarHook'),
        dict(type='CheckpointFitHook', strict=True, strict_resume=True)]
    assert 'model_wrapper_cfg' not in cfg  # mmengine's own path
    assert not torch_dist.is_initialized()
    assert init_cpu_dist('pytorch') is False


def test_cpu_model_wrapper_cfg():
    assert cpu_model_wrapper_cfg(None, True) == dict(
        type='CreamDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=True)
    got = cpu_model_wrapper_cfg(dict(find_unused_parameters=True))
    assert got['type'] == 'CreamDistributedDataParallel'
    fsdp = dict(type='MMFullyShardedDataParallel')
    assert cpu_model_wrapper_cfg(fsdp) is fsdp


def test_gloo_init_from_mpi_env_and_cpu_ddp(monkeypatch):
    """Single-process group from an MPI-style environment; the wrapper
    accepts the ``device_ids`` Runner.wrap_model always passes."""
    from conftest import ToyRegressor
    for k, v in dict(OMPI_COMM_WORLD_SIZE='1', OMPI_COMM_WORLD_RANK='0',
                     OMPI_COMM_WORLD_LOCAL_RANK='0', MASTER_ADDR='127.0.0.1',
                     MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(k, v)
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(k, raising=False)
    assert init_cpu_dist('mpi', backend='nccl', timeout=60)
    try:
        assert torch_dist.get_backend() == 'gloo'
        assert init_cpu_dist('mpi') is False  # already initialised
        ddp = CreamDistributedDataParallel(module=ToyRegressor(),
                                           device_ids=[0])
        assert ddp.device_ids is None
        from mmengine.optim import OptimWrapper
        optim = OptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.1))
        x = torch.ones(2, 4)
        loss = ddp.train_step(dict(inputs=x, target=torch.zeros(2)), optim)
        assert loss['loss'] > 0
    finally:
        torch_dist.destroy_process_group()


# ------------------------------------------------------------------ tools/
@pytest.mark.parametrize('scope', ['mmpretrain', 'mmdet'])
def test_train_resume_and_test_tools(tmp_path, toy_configs, monkeypatch,
                                     scope):
    monkeypatch.chdir(tmp_path)
    toy = toy_configs['toy_regression']

    def opts(name, *more):  # one MessageHub/logger per in-process run
        return ['--cfg-options', f'default_scope={scope}',
                f'experiment_name={scope}_{name}', *more]

    runner = run_train([toy, *opts('first')])
    work_dir = os.path.join('work_dirs', 'toy_regression')  # default
    assert os.path.abspath(runner.work_dir) == os.path.abspath(work_dir)
    assert any(type(h).__name__ == 'SafeCheckpointHook'
               for h in runner.hooks)
    assert_only_allow_listed(os.path.join(work_dir, 'epoch_1.pth'))

    runner = run_train(
        [toy, '--resume', *opts('resumed', 'train_cfg.max_epochs=2')])
    assert (runner.epoch, runner.iter) == (2, 16)
    assert os.path.isfile(os.path.join(work_dir, 'epoch_2.pth'))

    out = [] if scope == 'mmdet' else ['--out', 'preds.pkl']
    metrics = run_test([toy, os.path.join(work_dir, 'epoch_2.pth'),
                        '--work-dir', 'test_wd', *out, *opts('test')])
    assert metrics['count'] == 32 and metrics['mse'] > 0
    if out:
        with open('preds.pkl', 'rb') as f:
            assert len(pickle.load(f)) == 32


def test_tiny_cream_classifier_tools(tmp_path, toy_configs):
    cls = toy_configs['cream_tiny_cls']
    runner = run_train([cls, '--work-dir', str(tmp_path / 'wd'),
                        '--cfg-options', 'experiment_name=cls_train'])
    assert runner.iter == 2
    ckpt = str(tmp_path / 'wd' / 'epoch_1.pth')
    assert_only_allow_listed(ckpt)
    metrics = run_test([cls, ckpt, '--work-dir', str(tmp_path / 'test'),
                        '--cfg-options', 'experiment_name=cls_test'])
    assert 'accuracy/top1' in metrics


@pytest.mark.parametrize('argv, field', [
    (['missing.py'], 'argument config'),
    (['{toy}', '--resume', 'missing.pth'], 'argument --resume'),
    (['{toy}', '--cfg-options', 'load_from=missing.pth'], 'load_from'),
])
def test_train_bad_input_names_the_field(argv, field, toy_configs, capsys,
                                         tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        toy = toy_configs['toy_regression']
        run_train([a.format(toy=toy) for a in argv])
    assert field in capsys.readouterr().err


@pytest.mark.parametrize('argv, field', [
    (['missing.py', '{toy}'], 'argument config'),
    (['{toy}', 'missing.pth'], 'argument checkpoint'),
    (['{toy}', '{toy}'], 'argument checkpoint'),  # not a checkpoint
    (['{toy}', '{ckpt}', '--out', 'x.json'], 'argument --out'),
    (['{toy}', '{ckpt}', '--show-dir', 'vis'], 'argument --show/--show-dir'),
])
def test_test_bad_input_names_the_field(argv, field, toy_configs, capsys,
                                        tmp_path):
    toy = toy_configs['toy_regression']
    ckpt = str(tmp_path / 'weights.pth')
    torch.save(dict(state_dict=toy_linear().state_dict()), ckpt)
    with pytest.raises(SystemExit):
        run_test([a.format(toy=toy, ckpt=ckpt) for a in argv])
    assert field in capsys.readouterr().err


def test_eval_progress_bar_hook_draws_over_the_loader(capsys):
    """The tools add it; it ticks once per evaluation batch on rank 0."""
    from types import SimpleNamespace

    from mmengine.config import Config

    from cream_mm.engine import EvalProgressBarHook, prepare_runner_cfg
    cfg = prepare_runner_cfg(Config(dict(custom_hooks=[])))
    assert any(h['type'] == 'EvalProgressBarHook' for h in cfg.custom_hooks)
    hook = EvalProgressBarHook()
    runner = SimpleNamespace(val_loop=SimpleNamespace(dataloader=range(4)))
    hook.before_val_epoch(runner)
    for i in range(4):
        hook.after_val_iter(runner, i)
    hook.after_val_epoch(runner)
    out = capsys.readouterr().out
    assert '4/4' in out and hook._bar is None
