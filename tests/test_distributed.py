"""A real 2-process gloo job on CPU: tools/dist_train.sh and dist_test.sh.

Both ranks must end with identical weights, and those must equal plain
single-process SGD on the union of the two ranks' batches (DDP averages the
two gradients), while differing from what either rank's data alone gives --
so gradients really were all-reduced.
"""
import os
import pickle
import subprocess

import pytest
import torch
from conftest import PYTHON, ROOT, TESTS, free_port, toy_data, toy_linear

from cream_mm.engine import safe_load

LR, STEPS, BATCH = 0.01, 4, 4  # toy_regression: 32 samples, 4 per rank


def _launch(script, *args, timeout=150):
    env = dict(os.environ, PYTHON=PYTHON, PORT=str(free_port()),
               PYTHONPATH=TESTS, OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', os.path.join('tools', script), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def _sgd(rows_of_step):
    """Single-process SGD on toy_data; ``rows_of_step(i)`` picks batch i."""
    x, y = toy_data()
    fc = toy_linear()
    for i in range(STEPS):
        rows = rows_of_step(i)
        loss = ((fc(x[rows]).squeeze(-1) - y[rows])**2).mean()
        fc.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in fc.parameters():
                p -= LR * p.grad
    return {f'fc.{k}': v.detach() for k, v in fc.state_dict().items()}


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Run a 2-process training job once; return its work_dir and config."""
    tmp = tmp_path_factory.mktemp('dist')
    from conftest import TOY_REGRESSION
    config = str(tmp / 'toy_regression.py')
    with open(config, 'w') as f:
        f.write(TOY_REGRESSION)
    work_dir = str(tmp / 'work_dir')
    _launch('dist_train.sh', config, '2', '--work-dir', work_dir)
    return work_dir, config


def test_two_process_training_synchronises_gradients(trained):
    work_dir, _ = trained
    ranks = [torch.load(os.path.join(work_dir, f'weights_rank{r}.pt'),
                        weights_only=True) for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    for k in ranks[0]:
        assert torch.equal(ranks[0][k], ranks[1][k]), k  # identical

    # DefaultSampler(shuffle=False) gives rank r rows r, r+2, ...: step i
    # covers rows 8i..8i+7 across both ranks.
    union = _sgd(lambda i: slice(8 * i, 8 * i + 8))
    alone = [_sgd(lambda i, r=r: slice(8 * i + r, 8 * i + 8, 2))
             for r in (0, 1)]
    for k, v in union.items():
        torch.testing.assert_close(ranks[0][k], v, rtol=1e-5, atol=1e-6)
    for ref in alone:  # not what unsynchronised training would give
        assert max((ranks[0][k] - v).abs().max() for k, v in ref.items()) \
            > 1e-2

    ckpt = safe_load(os.path.join(work_dir, 'epoch_1.pth'))
    assert ckpt['meta']['iter'] == STEPS
    for k, v in union.items():  # the rank-0 checkpoint holds the same
        torch.testing.assert_close(ckpt['state_dict'][k], v, rtol=1e-5,
                                   atol=1e-6)


def test_two_process_testing_collects_all_results(trained, tmp_path):
    work_dir, config = trained
    out = str(tmp_path / 'preds.pkl')
    _launch('dist_test.sh', config, os.path.join(work_dir, 'epoch_1.pth'),
            '2', '--work-dir', str(tmp_path / 'test'), '--out', out)
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 32  # both ranks' halves gathered on rank 0
    x, y = toy_data()
    assert sorted(float(p['target']) for p in preds) == sorted(y.tolist())
