"""Search configs: all parse, ablation deltas set what Tab. 1 / Tab. 6 say,
the tiny config builds a model."""
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).parents[1] / 'configs' / 'search'
CONFIGS = sorted(ROOT.glob('*.py'))

TAB1 = {  # row: (matching, use_board, final)
    '1_spos_evolution': ('none', False, 'evolution'),
    '2_board': ('none', True, 'board'),
    '3_fixed': ('fixed', False, 'evolution'),
    '4_random': ('random', True, 'board'),
    '5_meta': ('meta', True, 'board'),
    '6_meta_evolution': ('meta', True, 'evolution'),
}


def _final(cfg):
    return cfg.custom_hooks[0].get('final', 'board')


#: algorithm of a search config -> hook names it may use
HOOKS = {'CreamSearch': ('CreamSearchHook', ),
         'SandwichSearch': ('SupernetSearchHook', 'CreamSearchHook'),
         'KShotSearch': ('SupernetSearchHook', 'CreamSearchHook')}


@pytest.mark.parametrize('path', CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_parses(path):
    cfg = Config.fromfile(str(path))
    assert cfg.model.type in HOOKS
    assert cfg.custom_hooks[0].type in HOOKS[cfg.model.type]
    if path.stem.startswith(('cream', 'ablation', 'space', 'tiny_cream',
                             'tiny_spos')):
        assert cfg.model.type == 'CreamSearch'
    if 'sandwich' in path.stem:
        assert cfg.model.type == 'SandwichSearch'
        assert _final(cfg) == 'pareto'


def test_alphanet_paper_settings():
    """AlphaNet's recipe (alphanet_kshot.md §1.2) on the AttentiveNAS
    space."""
    cfg = Config.fromfile(str(ROOT / 'alphanet_sandwich_in1k.py'))
    m = cfg.model
    assert m.supernet.type == 'AttentiveSupernet'
    assert m.supernet.space.resolutions == (192, 224, 256, 288)
    assert (m.num_random, m.label_smoothing, m.max_path_dropout,
            m.max_path_drop_connect) == (2, 0.1, 0.2, 0.2)
    assert (m.kd_loss.type, m.kd_loss.alpha_min, m.kd_loss.alpha_max,
            m.kd_loss.iw_clip) == ('AdaptiveAlphaDivergence', -1., 1., 5.)
    assert cfg.train_dataloader.batch_size * 64 == 2048
    ow = cfg.optim_wrapper
    assert (ow.optimizer.lr, ow.optimizer.momentum, ow.optimizer.nesterov,
            ow.optimizer.weight_decay) == (0.8, 0.9, True, 1e-5)
    assert ow.paramwise_cfg == dict(norm_decay_mult=0., bias_decay_mult=0.)
    assert ow.clip_grad == dict(type='value', clip_value=1.0)
    warm, cos = cfg.param_scheduler
    assert (warm.end, cos.begin, cos.end, cfg.train_cfg.max_epochs) == (
        5, 5, 360, 360)
    final = cfg.custom_hooks[0]
    assert final.final == 'pareto' and final.final_args.step == 10e6
    assert final.final_args.flops_range == (200e6, 1200e6)


@pytest.mark.parametrize('row', sorted(TAB1))
def test_tab1_rows(row):
    cfg = Config.fromfile(str(ROOT / f'ablation_tab1_{row}.py'))
    assert (cfg.model.matching, cfg.model.use_board, _final(cfg)) == TAB1[row]


def test_paper_settings():
    cfg = Config.fromfile(str(ROOT / 'cream_paper_287m_in1k.py'))
    m = cfg.model
    assert (m.board.num_paths, m.meta.interval, m.meta.hidden) == (10, 200,
                                                                  1000)
    # Eq. 4 on the release's 4 matching images; every sampled path scored
    # on the held-out subset (no screen), as the paper
    assert (m.meta.match_images, m.scoring.screen) == (4, False)
    val = cfg.search_val_dataloader.dataset
    assert (val.type, val.indices, val.offset) == ('SeededSubset', 2048, 0)
    # the final selection on the rest of val, disjoint from the subset
    from cream_mm.datasets import ranges_overlap
    final = cfg.final_dataloader.dataset
    assert (final.offset, final.indices) == (2048, None)
    assert ranges_overlap(val, final) is False
    sgd = cfg.optim_wrapper.supernet.optimizer
    assert (sgd.lr, sgd.momentum, sgd.weight_decay) == (0.5, 0.9, 4e-5)
    assert cfg.train_cfg.max_epochs == 120
    assert cfg.param_scheduler.supernet[0].end_factor == 0.0


def test_tiny_config_builds():
    import cream_mm.search  # noqa: F401
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(ROOT / 'tiny_cream_embedded.py'))
    model = MODELS.build(cfg.model)
    assert model.num_classes == 10 and len(model.board) == 5
