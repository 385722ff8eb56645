"""A real 2-process gloo sandwich-rule search (``tools/dist_train.sh`` on
the tiny sandwich config, alpha-divergence + value clipping): every rank
draws the same subnets and ends every step with the same supernet
(parameters, BN buffers), sampler generator and optimiser state, although
each trained on its own shard of the data."""
import textwrap

import pytest
import torch
from _dist import dist_train
from conftest import ROOT

pytestmark = pytest.mark.slow  # ~40 s: two processes
ITERS = 4


@pytest.fixture(scope='module')
def dist_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('sandwich_dist')
    config = tmp / 'tiny_sandwich_dist.py'
    config.write_text(textwrap.dedent(f"""
        _base_ = ['{ROOT}/configs/search/tiny_sandwich_alpha_embedded.py']
        train_dataloader = dict(batch_size=8)
        train_cfg = dict(max_iters={ITERS})
        default_hooks = dict(logger=dict(interval=1),
                             checkpoint=dict(interval={ITERS}))
        custom_hooks = [
            dict(type='SupernetSearchHook', log_interval=0, final='none'),
            dict(type='SearchDigestHook', save_final=True)]
        """))
    work_dir = tmp / 'work'
    rows = dist_train(config, work_dir, timeout=300)
    return work_dir, rows


def test_same_paths_and_state_on_every_rank(dist_run):
    work_dir, (rank0, rank1) = dist_run
    assert [r['iter'] for r in rank0] == list(range(1, ITERS + 1))
    assert len(rank1) == ITERS
    for a, b in zip(rank0, rank1):
        ce_a, ce_b = a.pop('ce_local'), b.pop('ce_local')
        assert a == b, (a, b)  # paths and every state digest
        assert ce_a != ce_b  # different shards on each rank
        assert len(a['paths']) == 4
    assert len({r['paths'][1] for r in rank0}) > 1  # random paths vary
    s0 = torch.load(work_dir / 'state_rank0.pth', weights_only=True)
    s1 = torch.load(work_dir / 'state_rank1.pth', weights_only=True)
    for k, v in s0['state_dict'].items():
        assert torch.equal(v, s1['state_dict'][k]), k
    assert int(s0['state_dict']['iter']) == ITERS
