"""tools/gpu_check.py: the plan, its shortening options (configs read, never
edited), the synthetic data layouts, and (slow) a CPU run end to end."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
from tools import gpu_check  # noqa: E402


def test_plan_covers_every_paper_config_with_and_without_amp():
    args = gpu_check.parse_args(['--device', 'cpu'])
    runs = gpu_check.plan(args)
    names = {c.name for c, _ in runs}
    assert names == {'cream-14m', 'cream-287m', 'cream-release', 'sandwich',
                     'kshot', 'kshot-attentive', 'retrain-287m',
                     'retinanet-s'}
    assert len(runs) == 2 * len(names)
    assert all((c, not a) in runs for c, a in runs)
    for check, _ in runs:
        assert (ROOT / check.config).is_file()
    assert (args.iters, args.timeout) == (2, 900)
    cuda = gpu_check.parse_args([])
    assert (cuda.device, cuda.iters, cuda.timeout) == ('cuda', 6, 120)
    one = gpu_check.parse_args(['--only', 'kshot', '--amp', 'on'])
    assert [(c.name, a) for c, a in gpu_check.plan(one)] == [('kshot', True)]
    with pytest.raises(SystemExit):
        gpu_check.parse_args(['--only', 'nope'])
    with pytest.raises(SystemExit):
        gpu_check.parse_args(['--iters', '1'])


def _merged(check, device, tmp_path, iters=3):
    opts = gpu_check.options(check, device, tmp_path, iters)
    cfg = Config.fromfile(str(ROOT / check.config))
    cfg.merge_from_dict(opts)
    return cfg, opts


@pytest.mark.parametrize('name', [c.name for c in gpu_check.PLAN])
def test_options_shorten_the_run(name, tmp_path):
    check = {c.name: c for c in gpu_check.PLAN}[name]
    text = (ROOT / check.config).read_text()
    cfg, opts = _merged(check, 'cpu', tmp_path)
    assert (ROOT / check.config).read_text() == text  # not edited
    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=3,
                                 val_interval=3)
    assert cfg.train_dataloader.batch_size <= 4
    assert cfg.train_dataloader.num_workers == 0
    assert str(tmp_path) in cfg.train_dataloader.dataset.data_root
    if check.kind in gpu_check.SEARCH_KINDS:
        assert cfg.search_val_dataloader.dataset.indices == 8
        val = cfg.search_val_dataloader.dataset
        val = val.get('dataset', val)  # through SeededSubset
        assert str(tmp_path) in val.data_root
        if cfg.get('final_dataloader') and \
                cfg.final_dataloader.dataset.type == 'SeededSubset':
            final = cfg.final_dataloader.dataset  # disjoint, 8 images
            assert (final.indices, final.offset) == (8, 8)
            assert str(tmp_path) in final.dataset.data_root
            assert any(t.get('crop_size') == 32
                       for t in final.dataset.pipeline)
        crops = [t for t in cfg.train_dataloader.dataset.pipeline
                 if t['type'] == 'RandomResizedCrop']
        assert crops[0].scale == 32  # small crops on cpu
    if check.kind in ('sandwich', 'kshot'):
        assert cfg.custom_hooks[0].final_args.population == 4
        assert cfg.model.calib_batches == 1
    if check.kind == 'det':
        assert cfg.model.backbone.init_cfg is None
        assert cfg.val_evaluator.ann_file.startswith(str(tmp_path))
    # every option is a string tools/train.py's DictAction parses back
    cmd = gpu_check.command(check, True, opts, tmp_path / 'w')
    assert '--amp' in cmd
    from tools.train import parse_args
    _, args = parse_args(cmd[2:])
    assert args.cfg_options == opts


def test_cuda_options_keep_the_configs_sizes(tmp_path):
    check = gpu_check.PLAN[1]  # cream-287m
    cfg, _ = _merged(check, 'cuda', tmp_path)
    crops = [t for t in cfg.train_dataloader.dataset.pipeline
             if t['type'] == 'RandomResizedCrop']
    assert crops[0].scale == 224 and cfg.train_dataloader.num_workers == 4


def test_synthetic_layouts(tmp_path):
    from mmdet.datasets import CocoDataset
    from mmpretrain.datasets import ImageNet
    root = gpu_check.make_imagenet(tmp_path / 'imagenet', 24, (2, 1))
    train = ImageNet(data_root=str(root), split='train', pipeline=[])
    val = ImageNet(data_root=str(root), split='val', pipeline=[])
    assert (len(train), len(val)) == (2 * gpu_check.CLASSES,
                                      gpu_check.CLASSES)
    assert sorted({train.get_gt_labels()[i] for i in range(len(train))}) \
        == list(range(gpu_check.CLASSES))
    coco = gpu_check.make_coco(tmp_path / 'coco', (64, 80), (3, 2))
    ds = CocoDataset(data_root=f'{coco}/',
                     ann_file='annotations/instances_val2017.json',
                     data_prefix=dict(img='val2017/'), pipeline=[])
    assert len(ds) == 2 and all(len(d['instances']) >= 1 for d in ds)


def test_throughput_reads_the_log(tmp_path):
    vis = tmp_path / '20260101_000000' / 'vis_data'
    vis.mkdir(parents=True)
    vis.joinpath('scalars.json').write_text('\n'.join(json.dumps(r) for r in (
        dict(iter=1, time=9.0), dict(iter=2, time=0.5),
        dict(iter=3, time=0.25), dict(iter=4, time=0.5))))
    assert gpu_check.throughput(tmp_path, 8) == 16.0
    assert gpu_check.throughput(tmp_path / 'none', 8) is None


@pytest.mark.slow
def test_cpu_run_end_to_end(tmp_path):
    """A Cream search (final selection + export) and RetinaNet, 2 CPU
    iterations each, without AMP."""
    out = subprocess.run(
        [sys.executable, str(ROOT / 'tools/gpu_check.py'), '--device', 'cpu',
         '--only', 'cream-14m', 'retinanet-s', '--amp', 'off', '--out',
         str(tmp_path)], capture_output=True, text=True, timeout=1200)
    lines = [ln for ln in out.stdout.splitlines()
             if ln.startswith(('PASS', 'FAIL'))]
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(lines) == 2 and all(ln.startswith('PASS') for ln in lines)
    assert (tmp_path / 'runs/cream-14m/search/searched_cls.py').is_file()
    results = json.loads((tmp_path / 'results.json').read_text())
    assert all(r['images_per_s'] > 0 for r in results)
