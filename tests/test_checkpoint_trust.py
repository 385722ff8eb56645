"""A checkpoint is loaded only if it is what it claims: readable (not empty,
truncated or damaged), safe, and -- for evaluation and resumes -- filling the
model exactly (docs/checkpoints.md)."""
import os

import pytest
import torch

import cream_mm  # noqa: F401
from cream_mm.engine import (CorruptCheckpointError, check_checkpoint,
                             sanitize_checkpoint,
                             safe_load)
from cream_mm.models.checkpoint import CheckpointMismatchError
from tools.test import main as run_test
from tools.train import main as run_train


def _opts(name, *more):  # one MessageHub/logger per in-process run
    return ['--cfg-options', f'experiment_name={name}', *more]


@pytest.fixture
def trained(tmp_path, toy_configs):
    """(config, checkpoint of one toy epoch)."""
    toy = toy_configs['toy_regression']
    run_train([toy, '--work-dir', str(tmp_path / 'wd'), *_opts('fit_first')])
    return toy, str(tmp_path / 'wd' / 'epoch_1.pth')


def _rewrite(src, dst, edit):
    ckpt = torch.load(src, weights_only=True)
    edit(ckpt['state_dict'])
    torch.save(sanitize_checkpoint(ckpt), dst)
    return dst


def _wider_fc(state):  # a mis-shaped and an unknown tensor; fc.bias fits
    state['fc.weight'] = torch.zeros(2, 4)
    state['neck.extra'] = torch.zeros(3)


def test_test_tool_refuses_a_checkpoint_that_does_not_fill_the_model(
        trained, tmp_path):
    toy, good = trained
    bad = _rewrite(good, str(tmp_path / 'wider.pth'), _wider_fc)
    with pytest.raises(CheckpointMismatchError) as err:
        run_test([toy, bad, '--work-dir', str(tmp_path / 't1'),
                  *_opts('fit_t1')])
    msg = str(err.value)
    assert bad in msg and 'fc.weight: checkpoint (2, 4) vs model (1, 4)' \
        in msg and 'neck.extra' in msg and '--non-strict' in msg
    # the opt-out evaluates with what fits, after listing it
    metrics = run_test([toy, bad, '--work-dir', str(tmp_path / 't2'),
                        '--non-strict', *_opts('fit_t2')])
    assert metrics['count'] == 32
    # an exact checkpoint still evaluates
    assert run_test([toy, good, '--work-dir', str(tmp_path / 't3'),
                     *_opts('fit_t3')])['count'] == 32


def test_missing_keys_are_refused_too(trained, tmp_path):
    toy, good = trained
    bad = _rewrite(good, str(tmp_path / 'nobias.pth'),
                   lambda s: s.pop('fc.bias'))
    with pytest.raises(CheckpointMismatchError, match='missing.*fc.bias'):
        run_test([toy, bad, '--work-dir', str(tmp_path / 't'),
                  *_opts('fit_missing')])


def test_train_load_from_lists_what_it_skips_and_resume_is_strict(
        trained, tmp_path, capsys):
    toy, good = trained
    other = _rewrite(good, str(tmp_path / 'other_head.pth'), _wider_fc)
    # fine-tuning with another head: trains, but says what it skipped
    capsys.readouterr()
    runner = run_train([toy, '--work-dir', str(tmp_path / 'ft'),
                        *_opts('fit_ft', f'load_from={other}')])
    assert runner.epoch == 1
    out = ''.join(capsys.readouterr())
    assert 'does not fill' in out and 'fc.weight' in out \
        and 'neck.extra' in out
    # ... unless load_strict=True
    with pytest.raises(CheckpointMismatchError, match='fc.weight'):
        run_train([toy, '--work-dir', str(tmp_path / 'ft2'),
                   *_opts('fit_ft2', f'load_from={other}',
                          'load_strict=True')])
    # nothing of the model filled: another architecture, always refused
    alien = _rewrite(good, str(tmp_path / 'alien.pth'),
                     lambda s: [s.pop(k) for k in list(s)] and
                     s.update(conv=torch.zeros(1)))
    with pytest.raises(CheckpointMismatchError, match='not one model key'):
        run_train([toy, '--work-dir', str(tmp_path / 'ft3'),
                   *_opts('fit_ft3', f'load_from={alien}')])
    # a resume must fit exactly
    with pytest.raises(CheckpointMismatchError, match='resume: checkpoint'):
        run_train([toy, '--work-dir', str(tmp_path / 'rs'), '--resume',
                   other, *_opts('fit_rs')])


@pytest.fixture
def damaged(tmp_path, trained):
    """name -> path of a damaged copy of a good checkpoint."""
    _, good = trained
    data = open(good, 'rb').read()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    files = dict(empty=b'', truncated=data[:len(data) // 2],
                 random=os.urandom(600), flipped=bytes(flipped))
    out = {}
    for name, blob in files.items():
        out[name] = str(tmp_path / f'{name}.pth')
        with open(out[name], 'wb') as f:
            f.write(blob)
    return out


@pytest.mark.parametrize('name, words', [
    ('empty', 'is empty'), ('truncated', 'is truncated'),
    ('random', 'is not a PyTorch checkpoint'), ('flipped', 'CRC')])
def test_damaged_checkpoints_are_named_before_anything_is_built(
        damaged, trained, name, words, capsys, tmp_path):
    toy, _ = trained
    path = damaged[name]
    with pytest.raises(CorruptCheckpointError) as err:
        check_checkpoint(path, 'load_from')
    assert path in str(err.value) and words in str(err.value)
    assert 'arbitrary code' not in str(err.value)
    for argv, field in [
        (lambda: run_test([toy, path]), 'argument checkpoint'),
        (lambda: run_train([toy, '--resume', path]), '--resume'),
        (lambda: run_train([toy, *_opts('x', f'load_from={path}')]),
         'load_from')]:
        capsys.readouterr()
        with pytest.raises(SystemExit):
            argv()
        got = capsys.readouterr().err
        assert field in got and path in got and words in got, got


@pytest.mark.parametrize('name', ['empty', 'truncated', 'random'])
def test_safe_load_says_corrupt_not_unsafe(damaged, name):
    with pytest.raises(CorruptCheckpointError) as err:
        safe_load(damaged[name])
    assert damaged[name] in str(err.value)
    assert 'arbitrary code' not in str(err.value)
