"""A real 2-process gloo search: ``tools/dist_train.sh`` on the tiny Cream
config (a few iterations, small batches, a 2-iteration warm-up and tau=2, so
the board is scored, the teacher is meta-matched and Eq. 6 runs twice).

``SearchDigestHook`` writes one line per iteration and rank: the sampled
path, teacher, rho, the board and digests of supernet parameters and
buffers, board, meta network, sampler generator and both optimisers. Every
line must be identical across the ranks (but for the rank's own CE, which
must differ: the ranks really trained on different shards), and the final
states saved by both ranks must be bit-identical.
"""
import textwrap

import pytest
import torch
from _dist import dist_train
from conftest import ROOT

ITERS, WARMUP, TAU = 6, 2, 2


def _config(tmp_path) -> str:
    path = tmp_path / 'tiny_dist.py'
    path.write_text(textwrap.dedent(f"""
        _base_ = ['{ROOT}/configs/search/tiny_cream_embedded.py']
        model = dict(warmup=dict(iters={WARMUP}),
                     meta=dict(interval={TAU}))
        train_dataloader = dict(batch_size=8)
        search_val_dataloader = dict(batch_size=16,
                                     dataset=dict(indices=64))
        train_cfg = dict(max_iters={ITERS})
        default_hooks = dict(logger=dict(interval=1),
                             checkpoint=dict(interval={ITERS}))
        custom_hooks = [
            dict(type='CreamSearchHook', log_interval=0, final='board'),
            dict(type='SearchDigestHook', save_final=True)]
        """))
    return str(path)


@pytest.fixture(scope='module')
def dist_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('search_dist')
    work_dir = tmp / 'work'
    rows = dist_train(_config(tmp), work_dir, timeout=300)
    return work_dir, rows


def test_every_step_identical_across_ranks(dist_run):
    _, (rank0, rank1) = dist_run
    assert [r['iter'] for r in rank0] == list(range(1, ITERS + 1))
    assert len(rank1) == ITERS
    for a, b in zip(rank0, rank1):
        ce_a, ce_b = a.pop('ce_local'), b.pop('ce_local')
        assert a == b, (a, b)  # path, teacher, rho, board, all digests
        assert ce_a != ce_b  # different shards of the data on each rank


def test_run_exercised_the_whole_algorithm(dist_run):
    _, (rank0, _) = dist_run
    paths = [r['path'] for r in rank0]
    assert len(set(paths)) > 1
    assert all(r['teacher'] is None for r in rank0[:WARMUP])
    assert all(r['teacher'] is not None for r in rank0[WARMUP:])
    # Eq. 6 at distillation steps 1, 1 + tau, ...
    assert [r['meta_update'] for r in rank0[WARMUP:]] == [
        i % TAU == 0 for i in range(ITERS - WARMUP)]
    metas = [r['digest']['meta'] for r in rank0]
    assert metas[WARMUP] != metas[WARMUP - 1]  # the meta network moved
    assert all(score > float('-inf') for _, _, score in rank0[-1]['board'])
    sup = [r['digest']['supernet'] for r in rank0]
    assert len(set(sup)) == ITERS  # the supernet trained every step


def test_final_states_bit_identical(dist_run):
    work_dir, _ = dist_run
    s0, s1 = (torch.load(work_dir / f'state_rank{r}.pth', weights_only=True)
              for r in (0, 1))
    assert s0['state_dict'].keys() == s1['state_dict'].keys()
    for k, v in s0['state_dict'].items():
        assert torch.equal(v, s1['state_dict'][k]), k
    bn = [k for k in s0['state_dict'] if k.endswith('running_mean')]
    assert bn and any(s0['state_dict'][k].abs().sum() > 0 for k in bn)

    def tensors(o):
        if isinstance(o, torch.Tensor):
            return [o]
        if isinstance(o, dict):
            return [t for k in sorted(o, key=str) for t in tensors(o[k])]
        if isinstance(o, (list, tuple)):
            return [t for v in o for t in tensors(v)]
        return []
    t0, t1 = tensors(s0['optimizer']), tensors(s1['optimizer'])
    assert len(t0) == len(t1) > 0
    assert all(torch.equal(a, b) for a, b in zip(t0, t1))
    # rank 0 exported the final selection
    assert (work_dir / 'search' / 'searched.arch').is_file()
