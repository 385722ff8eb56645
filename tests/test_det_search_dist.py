"""The detection search through the tools, on the embedded composite set
(a few iterations, 2 images per batch): a 2-process gloo run whose ranks
stay bit-identical, and a run killed at iteration k and resumed that equals
the uninterrupted one (as test_search_distributed.py / test_search_resume.py
for the classification search). Slow: each run starts the tools."""
import textwrap

import pytest
import torch
from _dist import dist_train
from conftest import ROOT
from test_search_resume import _assert_same, _digests, _train

from cream_mm.engine import safe_load

pytestmark = pytest.mark.slow
ITERS, WARMUP, TAU = 6, 2, 2


def _config(tmp_path, name, kill_at=None) -> str:
    path = tmp_path / f'{name}.py'
    kill = f"dict(type='KillAtIterHook', at={kill_at})," if kill_at else ''
    path.write_text(textwrap.dedent(f"""
        _base_ = ['{ROOT}/configs/det_search/tiny_det_cream_composite.py']
        custom_imports = dict(imports=['cream_mm', 'test_search_resume'],
                              allow_failed_imports=False)
        randomness = dict(seed=0, deterministic=True)
        img = 96
        model = dict(supernet=dict(init_cfg=None, space=dict(input_size=96)),
                     flops_range=(None, None), board=dict(num_paths=3),
                     scoring=dict(screen=False),
                     warmup=dict(iters={WARMUP}), meta=dict(interval={TAU}))
        search_val_dataloader = dict(batch_size=2, dataset=dict(indices=8))
        final_dataloader = dict(batch_size=2, dataset=dict(indices=8))
        train_cfg = dict(max_iters={ITERS})
        default_hooks = dict(logger=dict(interval=1), checkpoint=dict(
            interval={kill_at or ITERS}, max_keep_ckpts=1))
        custom_hooks = [
            dict(type='CreamSearchHook', log_interval=0,
                 final={'"board"' if kill_at is None and name == 'dist'
                        else '"none"'}),
            dict(type='SearchDigestHook', save_final=True),
            {kill}]
        """))
    return str(path)


def test_two_gloo_ranks_stay_identical(tmp_path):
    work = tmp_path / 'work'
    rank0, rank1 = dist_train(_config(tmp_path, 'dist'), work, timeout=900)
    assert [r['iter'] for r in rank0] == list(range(1, ITERS + 1))
    for a, b in zip(rank0, rank1):
        ce_a, ce_b = a.pop('ce_local'), b.pop('ce_local')
        assert a == b, (a, b)
        assert ce_a != ce_b
    assert all(r['teacher'] is not None for r in rank0[WARMUP:])
    assert any(r['meta_update'] for r in rank0)
    s0, s1 = (torch.load(work / f'state_rank{r}.pth', weights_only=True)
              for r in (0, 1))
    for k, v in s0['state_dict'].items():
        assert torch.equal(v, s1['state_dict'][k]), k
    assert (work / 'search' / 'searched_detector.py').is_file()


def test_kill_and_resume_equals_uninterrupted(tmp_path):
    ref = tmp_path / 'ref'
    _train(_config(tmp_path, 'ref'), ref)
    k, work = 3, tmp_path / 'killed'
    config = _config(tmp_path, 'kill', kill_at=k)
    _train(config, work, expect_kill=True)
    _train(config, work, '--resume', '--cfg-options', 'custom_hooks.2.at=0')
    a = safe_load(str(ref / f'iter_{ITERS}.pth'))
    b = safe_load(str(work / f'iter_{ITERS}.pth'))
    assert any(key.startswith('detector.backbone.') for key in
               a['state_dict'])
    _assert_same(a['state_dict'], b['state_dict'], 'state_dict')
    _assert_same(a['optimizer'], b['optimizer'], 'optimizer')
    assert a['search_history'] == b['search_history']
    assert _digests(ref) == _digests(work)
