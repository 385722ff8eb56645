"""K-shot search on 2 gloo processes (``tools/dist_train.sh``, tiny
config): both ranks draw the same paths, average the gradients of both
steps and the BN statistics, and so hold bit-identical supernets (K
copies), simplex-nets, samplers and optimisers after every step."""
import textwrap

import pytest
import torch
from _dist import dist_train
from conftest import ROOT

ITERS, WARMUP = 4, 2
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def dist_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('kshot_dist')
    cfg = tmp / 'tiny_kshot_dist.py'
    cfg.write_text(textwrap.dedent(f"""
        _base_ = ['{ROOT}/configs/search/tiny_kshot_embedded.py']
        model = dict(warmup=dict(iters={WARMUP}), simplex=dict(paths=4))
        train_dataloader = dict(batch_size=8)
        search_val_dataloader = dict(batch_size=16,
                                     dataset=dict(indices=32))
        train_cfg = dict(max_iters={ITERS})
        default_hooks = dict(logger=dict(interval=1),
                             checkpoint=dict(interval={ITERS}))
        custom_hooks = [
            dict(type='SupernetSearchHook', log_interval=0, final='nsga2',
                 final_args=dict(population=4, generations=1, parents=2)),
            dict(type='SearchDigestHook', save_final=True)]
        """))
    work_dir = tmp / 'work'
    rows = dist_train(cfg, work_dir, timeout=600)
    return work_dir, rows


def test_every_step_identical_across_ranks(dist_run):
    _, (rank0, rank1) = dist_run
    assert [r['iter'] for r in rank0] == list(range(1, ITERS + 1))
    assert len(rank1) == ITERS
    for a, b in zip(rank0, rank1):
        ce_a, ce_b = a.pop('ce_local'), b.pop('ce_local')
        assert a == b, (a, b)  # path, code, all digests
        assert ce_a != ce_b  # different shards on each rank
    assert [r['simplex_update'] for r in rank0] == [
        i >= WARMUP for i in range(ITERS)]


def test_final_states_bit_identical(dist_run):
    work_dir, _ = dist_run
    s0, s1 = (torch.load(work_dir / f'state_rank{r}.pth', weights_only=True)
              for r in (0, 1))
    assert s0['state_dict'].keys() == s1['state_dict'].keys()
    for k, v in s0['state_dict'].items():
        assert torch.equal(v, s1['state_dict'][k]), k
    assert any('simplex' in k for k in s0['state_dict'])
    assert (work_dir / 'search' / 'searched.arch').is_file()
