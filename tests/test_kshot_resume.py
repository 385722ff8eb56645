"""K-shot search through tools/train.py resumes exactly: a run resumed
from iteration 2 (the end of the lambda = 1/K warm-up, the first simplex
step still ahead) ends bit-identical to an uninterrupted one -- K-fold
weights, simplex-net, BN buffers, sampler generator, both optimisers and
both schedulers."""
import torch

from _compare import assert_same

from cream_mm.engine import safe_load

OPTS = ['train_cfg.max_iters=4', 'model.warmup.iters=2',
        'train_dataloader.batch_size=16', 'model.simplex.paths=4',
        'default_hooks.checkpoint.interval=2', 'custom_hooks.0.final=none']


def test_resumed_kshot_search_equals_uninterrupted(tmp_path):
    from tools.train import main
    cfg = 'configs/search/tiny_kshot_embedded.py'
    n = torch.get_num_threads()
    try:
        ref = main([cfg, '--work-dir', str(tmp_path / 'ref'),
                    '--cfg-options', *OPTS])
        assert int(ref.model.simplex_steps) == 2
        main([cfg, '--work-dir', str(tmp_path / 'res'), '--resume',
              str(tmp_path / 'ref/iter_2.pth'), '--cfg-options', *OPTS])
    finally:
        torch.set_num_threads(n)
    a = safe_load(str(tmp_path / 'ref/iter_4.pth'))
    b = safe_load(str(tmp_path / 'res/iter_4.pth'))
    assert 'sampler.rng_state' in a['state_dict']
    assert any(k.endswith('simplex.warmup') for k in a['state_dict'])
    assert_same(a['state_dict'], b['state_dict'], 'state_dict')
    assert_same(a['optimizer'], b['optimizer'], 'optimizer')
    assert_same(a['param_schedulers'], b['param_schedulers'], 'schedulers')
