"""Paper-scale configs: each FLOPs target searches, ranks and retrains at its
own input size; Tab. 1 in the Cream-M range; the fixed-matching teacher in
range; learning rates scale with the batch (auto_scale_lr); slurm CPUs."""
import itertools
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config

from cream_mm.models.complexity import arch_cost
from cream_mm.models.supernet import SearchSpace
from cream_mm.search.flops_table import FlopsTable
from cream_mm.search.sampler import PathSampler

ROOT = Path(__file__).parents[1]
SEARCH = ROOT / 'configs' / 'search'
torch.set_num_threads(1)

#: target -> (input size, released retrain config)
TARGETS = {'14m': (64, 'cream/cream-14m_16xb128_in1k.py'),
           '43m': (96, 'cream/cream-43m_16xb128_in1k.py'),
           '114m': (160, 'cream/cream-114m_16xb128_in1k.py')}


def _crop(pipeline) -> int:
    sizes = [t.get('scale', t.get('crop_size')) for t in pipeline
             if t['type'] in ('RandomResizedCrop', 'CenterCrop')]
    assert len(sizes) == 1, pipeline
    return sizes[0]


def _images(loader):
    """The dataset that reads the images, through ``SeededSubset`` (whose
    own arguments are only ``dataset, indices, seed, offset``)."""
    ds = loader.dataset
    while ds.type == 'SeededSubset':
        assert set(ds) <= {'type', 'dataset', 'indices', 'seed', 'offset'}, ds
        ds = ds.dataset
    return ds


@pytest.mark.parametrize('target', sorted(TARGETS))
def test_target_searches_at_its_input_size(target):
    size, base = TARGETS[target]
    cfg = Config.fromfile(str(SEARCH / f'cream_paper_{target}_in1k.py'))
    assert cfg.model.supernet.space.input_size == size  # FLOPs counted here
    assert _crop(cfg.train_dataloader.dataset.pipeline) == size
    assert _crop(_images(cfg.search_val_dataloader).pipeline) == size
    assert _crop(_images(cfg.final_dataloader).pipeline) == size
    hook = cfg.custom_hooks[0]
    assert hook.type == 'CreamSearchHook' and hook.final == 'board'
    assert hook.export.cls_base == base
    assert hook.export.get('cls_input_size') is None  # keep base pipelines


@pytest.mark.parametrize('target', ['14m'])
def test_exported_retrain_config_matches_target(target, tmp_path):
    """The export of a search at 64 px inherits the 64-px 14M recipe: its
    pipelines crop 64, its optimiser / schedule are the 14M config's, and
    the path's FLOPs at that size lie in the search's range."""
    import cream_mm  # noqa: F401
    from mmpretrain.registry import MODELS

    from cream_mm.search import export_arch
    size, base = TARGETS[target]
    cfg = Config.fromfile(str(SEARCH / f'cream_paper_{target}_in1k.py'))
    cfg.model.board.num_paths = 1
    model = MODELS.build(cfg.model)
    arch = model.board_arch(0)
    summary = export_arch(model, arch, tmp_path, **cfg.custom_hooks[0].export)
    assert summary['resolution'] == size
    lo, hi = cfg.model.flops_range
    assert lo <= summary['flops'] == arch_cost(arch, size).flops <= hi
    cls = Config.fromfile(summary['cls_config'])
    ref = Config.fromfile(str(ROOT / 'configs' / base))
    assert _crop(cls.train_dataloader.dataset.pipeline) == size
    assert _crop(cls.val_dataloader.dataset.pipeline) == size
    assert _crop(cls.test_dataloader.dataset.pipeline) == size
    assert cls.optim_wrapper == ref.optim_wrapper
    assert cls.param_scheduler == ref.param_scheduler
    assert cls.train_cfg == ref.train_cfg
    assert cls.auto_scale_lr == ref.auto_scale_lr


@pytest.mark.parametrize('row', ['1_spos_evolution', '2_board', '3_fixed',
                                 '4_random', '5_meta', '6_meta_evolution'])
def test_tab1_rows_in_cream_m_range(row):
    """Tab. 1's models have 432-487M FLOPs (Cream-M, 224 px)."""
    cfg = Config.fromfile(str(SEARCH / f'ablation_tab1_{row}.py'))
    lo, hi = cfg.model.flops_range
    assert lo <= 432e6 and 487e6 <= hi <= 500e6 and lo >= 400e6
    assert cfg.model.supernet.space.input_size == 224


def _all_codes(sampler):
    allowed = [(row > 0).nonzero().flatten().tolist()
               for row in sampler.probs]
    return torch.tensor(list(itertools.product(*allowed)))


def test_largest_in_range_is_the_exact_maximum():
    """Brute force over a 6-layer space: the knapsack finds the costliest
    path whose exact cost is inside the range, for several ranges."""
    space = SearchSpace(name='mbconv', max_depths=(1, 1, 2, 1, 1),
                        input_size=64)
    table = FlopsTable(space, num_classes=10)
    codes = _all_codes(PathSampler(space, table))
    costs = table.batch_cost(codes, torch.zeros(len(codes), dtype=torch.long))
    smin, smax = float(costs.min()), float(costs.max())
    for frac in (0.1, 0.35, 0.6, 0.9):
        hi = smin + frac * (smax - smin)
        lo = smin + 0.05 * frac * (smax - smin)
        sampler = PathSampler(space, table, (lo, hi))
        best = float(costs[(costs >= lo) & (costs <= hi)].max())
        arch = sampler.largest_in_range()
        assert sampler.cost(arch) == best
        assert arch_cost(arch, 64, 10).flops == pytest.approx(best, rel=1e-12)
    # a range holding the whole space: the space's largest path
    whole = PathSampler(space, table, (None, None))
    assert whole.largest_in_range() == whole.extreme(True)


def test_fixed_teacher_is_largest_in_range_at_paper_scale():
    """Tab. 1 #3's range (430-500M at 224 px): the teacher's exact FLOPs
    are in range and within 0.01 % of the top; the space's largest path
    (864M) is far outside."""
    cfg = Config.fromfile(str(SEARCH / 'ablation_tab1_3_fixed.py'))
    lo, hi = cfg.model.flops_range
    space = SearchSpace(**cfg.model.supernet.space)
    sampler = PathSampler(space, FlopsTable(space), (lo, hi))
    arch = sampler.largest_in_range()
    flops = arch_cost(arch, 224).flops
    assert lo <= flops <= hi and flops > hi * (1 - 1e-4)
    assert arch_cost(sampler.extreme(True), 224).flops > 800e6


def test_fixed_matching_distils_from_the_in_range_teacher():
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from test_search_cream import make_model
    model = make_model(flops_range=(4e6, 6e6), matching='fixed',
                       use_board=False)
    teacher = model.largest
    assert 4e6 <= model.sampler.cost(teacher) <= 6e6
    assert model.sampler.cost(model.sampler.extreme(True)) > 6e6
    student = model.sampler.sample()
    got = model.select_teacher(None, None, student, None, None)
    assert got[0] == teacher or student == teacher


#: config -> (GPUs x images per GPU the lr was tuned for)
TUNED = {
    'search/cream_paper_287m_in1k.py': (8, 128),
    'search/cream_paper_14m_in1k.py': (8, 128),
    'search/cream_release_in1k.py': (8, 128),
    'search/ablation_tab1_5_meta.py': (8, 128),
    'search/space_tab6_mbconv_cream.py': (8, 128),
    'search/alphanet_sandwich_in1k.py': (64, 32),
    'search/kshot_paper_in1k.py': (8, 128),
    'search/kshot_paper_attentive_in1k.py': (8, 128),
    'cream/cream-287m_16xb128_in1k.py': (16, 128),
    'cream/cream-14m_16xb128_in1k.py': (16, 128),
    'alphanet/alphanet-a0_64xb32_in1k.py': (64, 32),
    'retinanet/retinanet_cream-s_fpn_1x_coco.py': (8, 4),
    'retinanet/retinanet_alphanet-a0_fpn_1x_coco.py': (8, 4),
    'detection/atss_cream-s_fpn_1x_coco.py': (8, 4),
}


@pytest.mark.parametrize('path', sorted(TUNED))
def test_auto_scale_lr_on_with_the_tuned_batch(path):
    cfg = Config.fromfile(str(ROOT / 'configs' / path))
    gpus, per_gpu = TUNED[path]
    assert cfg.train_dataloader.batch_size == per_gpu
    assert cfg.auto_scale_lr == dict(base_batch_size=gpus * per_gpu,
                                     enable=True)


def _scale(optim_wrapper, world_size, batch_size, base):
    """mmengine's own Runner.scale_lr on a runner stand-in."""
    from mmengine.logging import MMLogger
    from mmengine.runner import Runner
    runner = SimpleNamespace(
        world_size=world_size, param_schedulers=None,
        _train_dataloader=dict(batch_size=batch_size),
        logger=MMLogger.get_instance('test_paper_scale'))
    Runner.scale_lr(runner, optim_wrapper,
                    dict(base_batch_size=base, enable=True))


def test_scale_lr_scales_every_wrapper_of_the_search():
    """CreamSearch's OptimWrapperDict: 2 GPUs x 128 of a recipe tuned for
    1,024 runs the supernet at 0.5 / 4 and the meta network at 1e-4 / 4."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from test_search_cream import make_model

    from cream_mm.search.optim import CreamOptimWrapperConstructor
    cfg = Config.fromfile(str(SEARCH / 'cream_paper_287m_in1k.py'))
    ow_cfg = {k: v for k, v in cfg.optim_wrapper.items()
              if k != 'constructor'}
    model = make_model()
    ow = CreamOptimWrapperConstructor(ow_cfg)(model)
    _scale(ow, world_size=2, batch_size=128,
           base=cfg.auto_scale_lr.base_batch_size)
    lrs = ow.get_lr()
    assert lrs['supernet.lr'] == [pytest.approx(0.125)]
    assert lrs['meta.lr'] == [pytest.approx(2.5e-5)]


def test_scale_lr_retrain_recipe_on_other_gpu_counts():
    """RMSProp 0.064 for 16 x 128: 0.032 on 8 GPUs, 0.128 on 32."""
    from mmengine.optim import build_optim_wrapper

    import cream_mm  # noqa: F401
    cfg = Config.fromfile(str(ROOT / 'configs/cream/cream-287m_16xb128_in1k.py'))
    for gpus, lr in ((8, 0.032), (32, 0.128)):
        ow = build_optim_wrapper(torch.nn.Linear(2, 2), cfg.optim_wrapper)
        _scale(ow, gpus, cfg.train_dataloader.batch_size,
               cfg.auto_scale_lr.base_batch_size)
        assert ow.get_lr()['lr'] == [pytest.approx(lr)] * 2  # 2 groups


def test_train_cli_auto_scale_lr_and_opt_out():
    from tools.train import merge_args, parse_args
    path = str(ROOT / 'configs/retinanet/retinanet_cream-s_fpn_1x_coco.py')
    parser, args = parse_args([path, '--cfg-options',
                               'auto_scale_lr.enable=False'])
    cfg = merge_args(Config.fromfile(path), args, parser)
    assert cfg.auto_scale_lr.enable is False
    parser, args = parse_args([path, '--auto-scale-lr', '--cfg-options',
                               'auto_scale_lr.enable=False'])
    assert merge_args(Config.fromfile(path), args,
                      parser).auto_scale_lr.enable is True


def _slurm(tmp_path, config, **env):
    fake = tmp_path / 'bin'
    fake.mkdir(exist_ok=True)
    (fake / 'srun').write_text('#!/bin/sh\necho "SRUN $*"\n')
    (fake / 'srun').chmod(0o755)
    import sys
    run_env = dict(os.environ, PATH=f'{fake}:{os.environ["PATH"]}',
                   PYTHON=sys.executable, **env)
    out = subprocess.run(
        ['bash', str(ROOT / 'tools/slurm_train.sh'), 'part', 'job',
         str(config), str(tmp_path / 'wd')], env=run_env,
        capture_output=True, text=True, check=True)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith('SRUN')]
    return line[0], out.stderr


def test_slurm_cpus_per_task_covers_the_loader_workers(tmp_path):
    cfg = tmp_path / 'workers.py'
    cfg.write_text('train_dataloader = dict(batch_size=2, num_workers=6)\n'
                   'val_dataloader = dict(batch_size=2, num_workers=2)\n')
    line, _ = _slurm(tmp_path, cfg)
    assert '--cpus-per-task=7' in line
    line, err = _slurm(tmp_path, cfg, CPUS_PER_TASK='4')
    assert '--cpus-per-task=4' in line and 'warning' in err
    line, err = _slurm(tmp_path, cfg, CPUS_PER_TASK='12')
    assert '--cpus-per-task=12' in line and 'warning' not in err
