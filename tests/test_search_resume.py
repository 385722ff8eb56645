"""Killing a search at iteration k and resuming it equals an uninterrupted
run, bit for bit (``tools/train.py``, CPU, one thread).

The tiny Cream config runs N=8 iterations with a 3-iteration warm-up and
tau=2 (meta updates at iterations 4, 6, 8). A second run of the same config
is SIGKILLed right after its iteration-k checkpoint is written (k=2: inside
the warm-up; k=5: just before a meta update) and resumed with ``--resume``
(the latest checkpoint of its work dir). Its final checkpoint must equal the
uninterrupted run's: supernet weights and BN buffers, board, meta network,
sampler generator, counters, both optimisers, the schedulers and the
scored-path history; per-iteration digests (path, teacher, rho, board,
state) must match too. Checkpoints are loaded with ``weights_only=True``
(the engine's ``SafeCheckpointHook`` writes them; mmengine's resume goes
through ``cream_mm.engine.safe_load``).
"""
import json
import os
import signal
import subprocess
import textwrap

import pytest
import torch
from conftest import PYTHON, ROOT, TESTS
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from cream_mm.engine import safe_load  # weights_only=True + allow-list

N, WARMUP, TAU = 8, 3, 2


@HOOKS.register_module(force=True)
class KillAtIterHook(Hook):
    """SIGKILL this process after iteration ``at`` (its checkpoint and
    digest line are written: lower priority than both)."""
    priority = 'LOWEST'

    def __init__(self, at: int):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


def _config(tmp_path, kill_at=None) -> str:
    name = 'tiny_resume' if kill_at is None else f'tiny_kill{kill_at}'
    path = tmp_path / f'{name}.py'
    kill = f"dict(type='KillAtIterHook', at={kill_at})," if kill_at else ''
    path.write_text(textwrap.dedent(f"""
        _base_ = ['{ROOT}/configs/search/tiny_cream_embedded.py']
        custom_imports = dict(imports=['cream_mm', 'test_search_resume'],
                              allow_failed_imports=False)
        randomness = dict(seed=0, deterministic=True)
        model = dict(warmup=dict(iters={WARMUP}),
                     meta=dict(interval={TAU}))
        train_dataloader = dict(batch_size=8)
        search_val_dataloader = dict(batch_size=16,
                                     dataset=dict(indices=32))
        train_cfg = dict(max_iters={N})
        default_hooks = dict(logger=dict(interval=1), checkpoint=dict(
            interval={kill_at or N}, max_keep_ckpts=1))
        custom_hooks = [
            dict(type='CreamSearchHook', log_interval=0, final='none'),
            dict(type='SearchDigestHook'),
            {kill}]
        """))
    return str(path)


def _train(config, work_dir, *args, expect_kill=False):
    env = dict(os.environ, PYTHONPATH=TESTS + os.pathsep + ROOT, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [PYTHON, 'tools/train.py', config, '--work-dir', str(work_dir),
         *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300)
    if expect_kill:
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    else:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _digests(work_dir):
    with open(work_dir / 'search' / 'digest_rank0.jsonl') as f:
        return [json.loads(line) for line in f]


def _tensors(obj):
    """(path, tensor or value) leaves of a nested checkpoint entry."""
    if isinstance(obj, dict):
        return [(f'{k}.{p}', v) for k in sorted(obj, key=str)
                for p, v in _tensors(obj[k])]
    if isinstance(obj, (list, tuple)):
        return [(f'{i}.{p}', v) for i, o in enumerate(obj)
                for p, v in _tensors(o)]
    return [('', obj)]


def _assert_same(a, b, what):
    la, lb = _tensors(a), _tensors(b)
    assert [p for p, _ in la] == [p for p, _ in lb], what
    for (p, x), (_, y) in zip(la, lb):
        if isinstance(x, torch.Tensor):
            assert torch.equal(x, y), f'{what}: {p}'
        else:
            assert x == y, f'{what}: {p}: {x} != {y}'


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('search_resume')
    work = tmp / 'uninterrupted'
    _train(_config(tmp), work)
    return tmp, work


@pytest.mark.parametrize('k', [2, 5], ids=['in_warmup', 'before_meta'])
def test_kill_and_resume_equals_uninterrupted(reference, k):
    tmp, ref_dir = reference
    work = tmp / f'killed_at_{k}'
    config = _config(tmp, kill_at=k)
    _train(config, work, expect_kill=True)
    assert (work / f'iter_{k}.pth').is_file()
    assert not (work / f'iter_{k + 1}.pth').exists()
    assert len(_digests(work)) == k
    # resume from the latest checkpoint, no more killing
    _train(config, work, '--resume', '--cfg-options',
           'custom_hooks.2.at=0')

    ref = safe_load(str(ref_dir / f'iter_{N}.pth'))
    res = safe_load(str(work / f'iter_{N}.pth'))
    assert ref['meta']['iter'] == res['meta']['iter'] == N
    sd = ref['state_dict']
    for part in ('backbone.', 'head.', 'board.', 'meta_net.',
                 'sampler.rng_state', 'distill_steps', 'meta_steps'):
        assert any(key.startswith(part) for key in sd), part
    assert int(sd['meta_steps']) == 3 and int(sd['iter']) == N
    _assert_same(sd, res['state_dict'], 'state_dict')
    assert set(ref['optimizer']) == {'supernet', 'meta'}
    _assert_same(ref['optimizer'], res['optimizer'], 'optimizer')
    _assert_same(ref['param_schedulers'], res['param_schedulers'],
                 'param_schedulers')
    assert ref['search_history'] and \
        ref['search_history'] == res['search_history']

    # step by step: the resumed run repeats the uninterrupted sequence
    ref_rows, res_rows = _digests(ref_dir), _digests(work)
    assert [r['iter'] for r in res_rows] == list(range(1, N + 1))
    assert ref_rows == res_rows
