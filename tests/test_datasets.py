"""Embedded datasets: sizes, splits, determinism, COCO validity, pipelines.

All sets are built into temporary caches (``$CREAM_MM_DATA``); the first
build of each takes 1-3 s.
"""
import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image
from pycocotools.coco import COCO

import cream_mm.datasets  # noqa: F401  (registers the dataset classes)
from cream_mm.datasets import (EmbeddedClsDataset, EmbeddedCocoDataset,
                               cache, catalog, cls_arrays, prepare, sources)

CFG = Path(__file__).resolve().parents[1] / 'configs/_base_/datasets'
HAS_FASHION = sources.fashion_mnist_available()
needs_fashion = pytest.mark.skipif(
    not HAS_FASHION, reason='Debian dataset-fashion-mnist not installed')


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    """One cache for the module, via ``$CREAM_MM_DATA``."""
    path = tmp_path_factory.mktemp('embedded')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(cache.ENV_ROOT, str(path))
        yield path


@pytest.fixture
def mnist_only(tmp_path, monkeypatch):
    """A fresh cache where the Debian Fashion-MNIST files are 'missing'."""
    monkeypatch.setenv(sources.FASHION_ENV, str(tmp_path / 'no-fashion'))
    monkeypatch.setenv(cache.ENV_ROOT, str(tmp_path / 'cache'))
    return tmp_path / 'cache'


def load_config(name):
    return Config.fromfile(str(CFG / f'{name}.py'))


# ----------------------------------------------------------- classification
@needs_fashion
def test_fashion_mnist_split_sizes(root):
    sizes = {s: len(EmbeddedClsDataset('fashion_mnist', s, test_mode=True))
             for s in ('train', 'val', 'test', 'search_train', 'search_val')}
    assert sizes == dict(train=60000, val=10000, test=10000,
                         search_train=50000, search_val=10000)
    # the mmpretrain FashionMNIST trap: here only `split` picks the images
    assert len(EmbeddedClsDataset('fashion_mnist', 'train',
                                  test_mode=True)) == 60000
    assert len(EmbeddedClsDataset('fashion_mnist', 'test',
                                  test_mode=False)) == 10000


@needs_fashion
def test_fashion_mnist_search_split_is_carved_from_train(root):
    arrays = cls_arrays.load_arrays(catalog.ensure('fashion_mnist'),
                                    'fashion_mnist')
    sp = arrays['splits']
    assert set(sp['search_val']) <= set(sp['train'])
    assert not set(sp['search_val']) & set(sp['search_train'])
    assert not set(sp['val']) & set(sp['train'])
    assert np.array_equal(np.sort(np.r_[sp['search_train'], sp['search_val']]),
                          sp['train'])
    counts = np.bincount(arrays['labels'][sp['search_val']], minlength=10)
    assert (counts == 1000).all()


def test_auto_resolves_and_samples_are_hwc_uint8(root):
    ds = EmbeddedClsDataset(split='val', test_mode=True)
    assert ds.name == ('fashion_mnist' if HAS_FASHION else 'mnist5k')
    assert len(ds.metainfo['classes']) == 10
    labels = ds.get_gt_labels()
    assert labels.min() == 0 and labels.max() == 9
    info = ds.get_data_info(5)
    img = info['img']
    assert img.shape == (28, 28, 3) and img.dtype == np.uint8
    assert (img[..., 0] == img[..., 1]).all() and (img[..., 0] == img[..., 2]
                                                   ).all()
    assert info['gt_label'] == labels[5]


def test_subsets(root):
    ds = EmbeddedClsDataset(split='train', num_per_class=3)
    assert len(ds) == 30
    assert (np.bincount(ds.get_gt_labels(), minlength=10) == 3).all()
    assert len(EmbeddedClsDataset(split='train', indices=7)) == 7


def test_cls_config_pipeline(root):
    cfg = load_config('embedded_cls')
    assert cfg.val_evaluator.type == 'Accuracy'
    from mmpretrain.registry import DATASETS
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.indices = 4
        sample = DATASETS.build(loader.dataset)[0]
        assert sample['inputs'].shape == (3, 64, 64)
        assert sample['inputs'].dtype == torch.uint8
        assert 0 <= int(sample['data_samples'].gt_label) < 10


def test_fallback_to_mnist5k_says_so(mnist_only, monkeypatch):
    messages = []
    for mod in (catalog, cache):
        monkeypatch.setattr(mod, 'log',
                            lambda msg, **kw: messages.append(msg))
    sizes = {s: len(EmbeddedClsDataset('auto', s))
             for s in ('train', 'val', 'search_train', 'search_val')}
    assert sizes == dict(train=4000, val=1000, search_train=3500,
                         search_val=500)
    assert any('FALLING BACK to MNIST-5k' in m for m in messages)
    assert any('first use' in m for m in messages)
    ds = EmbeddedClsDataset('auto', 'val')
    assert ds.name == 'mnist5k' and ds.metainfo['classes'][0] == '0 - zero'
    assert (np.bincount(ds.get_gt_labels()) == 100).all()
    assert (mnist_only / 'mnist5k' / 'mnist5k.npz').is_file()


def test_missing_sources_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match='dataset-fashion-mnist'):
        sources.load_fashion_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match='pip install'):
        sources.package_dir('no_such_package_cream_mm')


# ------------------------------------------------------------- determinism
@pytest.mark.parametrize('name', ['mnist5k', 'trees', 'composite'])
def test_builds_are_byte_identical(name, tmp_path):
    a = catalog.ensure(name, tmp_path / 'a' / name)
    b = catalog.ensure(name, tmp_path / 'b' / name)
    man_a, man_b = (p / cache.MANIFEST for p in (a, b))
    assert man_a.read_bytes() == man_b.read_bytes()
    assert cache.verify(a) == [] and cache.verify(b) == []
    assert len(json.loads(man_a.read_text())['files']) >= 1


def _build_trees(path, queue):
    queue.put(str(catalog.ensure('trees', path)))


def test_concurrent_builds_do_not_collide(tmp_path):
    ctx = multiprocessing.get_context('fork')
    queue = ctx.Queue()
    target = tmp_path / 'trees'
    procs = [ctx.Process(target=_build_trees, args=(target, queue))
             for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert {queue.get(), queue.get()} == {str(target)}
    assert cache.verify(target) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.trees.lock',
                                                          'trees']


def test_refuses_to_overwrite_foreign_folder(tmp_path):
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'precious.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='not a cream_mm'):
        catalog.ensure('trees', tmp_path / 'mine')
    assert (tmp_path / 'mine' / 'precious.txt').is_file()


def test_refuses_the_folder_of_another_set_by_name(root, tmp_path):
    """data_root of 'composite' pointed at a 'trees' folder: trees stays."""
    import shutil
    trees = shutil.copytree(catalog.ensure('trees'), tmp_path / 'trees')
    before = cache.file_hashes(trees)
    with pytest.raises(FileExistsError, match="holds the embedded set "
                       "'trees', not 'composite'"):
        catalog.ensure('composite', trees)
    with pytest.raises(FileExistsError, match="'trees'"):
        catalog.ensure('composite', trees, force=True)
    assert cache.file_hashes(trees) == before and cache.verify(trees) == []


def test_damaged_file_is_found_and_the_set_rebuilt(root, tmp_path):
    import shutil
    trees = shutil.copytree(catalog.ensure('trees'), tmp_path / 'trees')
    good = (trees / 'annotations/instances_train.json').read_bytes()
    (trees / 'annotations/instances_train.json').write_text('')
    assert catalog.ensure('trees', trees) == trees
    assert (trees / 'annotations/instances_train.json').read_bytes() == good
    assert cache.verify(trees) == []


def test_damaged_set_that_cannot_be_rebuilt_says_how(tmp_path):
    calls = []

    def builder(out):
        calls.append(out)
        if len(calls) > 1:
            raise OSError('source files gone')
        (out / 'a.json').write_text('{}')
        return {}

    target = cache.ensure_built(tmp_path / 'toy', 'toy', 1, builder)
    (target / 'a.json').write_text('')
    with pytest.raises(RuntimeError) as err:
        cache.ensure_built(target, 'toy', 1, builder)
    msg = str(err.value)
    assert 'a.json' in msg and 'source files gone' in msg
    assert 'python -m cream_mm.datasets --names toy --force' in msg


# --------------------------------------------------------------- detection
@pytest.mark.parametrize('name', ['trees', 'composite'])
def test_coco_json_is_valid(name, root):
    folder = catalog.ensure(name)
    meta = cache.read_manifest(folder)['meta']
    names = {}
    for split in ('train', 'val'):
        coco = COCO(str(folder / f'annotations/instances_{split}.json'))
        assert len(coco.getImgIds()) == meta['splits'][split]['images'] > 0
        assert len(coco.getAnnIds()) == meta['splits'][split]['boxes'] > 0
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())
                ] == meta['classes']
        for img in coco.loadImgs(coco.getImgIds()):
            with Image.open(folder / split / img['file_name']) as im:
                assert im.size == (img['width'], img['height'])
        for ann in coco.loadAnns(coco.getAnnIds()):
            x, y, w, h = ann['bbox']
            img = coco.imgs[ann['image_id']]
            assert w >= 1 and h >= 1 and ann['area'] > 0
            assert x >= 0 and y >= 0
            assert x + w <= img['width'] and y + h <= img['height']
            assert ann['area'] <= w * h and ann['iscrowd'] == 0
        names[split] = {i['file_name'] for i in coco.dataset['images']}
    assert not names['train'] & names['val']


def test_trees_counts(root):
    meta = cache.read_manifest(catalog.ensure('trees'))['meta']
    assert meta['classes'] == ['tree']
    assert {s: v['images'] for s, v in meta['splits'].items()} == dict(
        train=27, val=11)
    assert sum(v['boxes'] for v in meta['splits'].values()) > 700


def test_composite_covers_all_classes_and_sizes(root):
    meta = cache.read_manifest(catalog.ensure('composite'))['meta']
    for split, n in meta['splits'].items():
        assert n['images'] == {'train': 400, 'val': 100}[split]
        assert min(n['per_class']) > 0
        for rng, count in n['area_ranges'].items():
            assert count >= 0.05 * n['boxes'], (split, rng)


@pytest.mark.parametrize('name', ['trees', 'composite'])
def test_det_config_pipeline(name, root):
    from mmdet.registry import DATASETS
    cfg = load_config(f'embedded_{name}')
    assert cfg.data_root == f'{root}/{name}/'
    with DefaultScope.overwrite_default_scope('mmdet'):
        for loader, test in ((cfg.train_dataloader, False),
                             (cfg.val_dataloader, True)):
            ds = DATASETS.build(loader.dataset)
            assert isinstance(ds, EmbeddedCocoDataset)
            assert ds.test_mode is test
            sample = ds[0]
            _, h, w = sample['inputs'].shape
            boxes = sample['data_samples'].gt_instances.bboxes.tensor
            assert len(boxes) > 0
            assert (boxes[:, 2:] > boxes[:, :2]).all()
            assert boxes.min() >= 0 and boxes[:, 2].max() <= w
            assert boxes[:, 3].max() <= h


@pytest.mark.parametrize('name', ['trees', 'composite'])
def test_coco_metric_scores_ground_truth_as_perfect(name, root):
    from mmdet.evaluation import CocoMetric
    cfg = load_config(f'embedded_{name}')
    ds = EmbeddedCocoDataset(name, 'val', test_mode=True)
    metric = CocoMetric(ann_file=cfg.val_evaluator.ann_file, metric='bbox')
    metric.dataset_meta = ds.metainfo
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        boxes = torch.tensor([b['bbox'] for b in info['instances']],
                             dtype=torch.float32)
        labels = torch.tensor([b['bbox_label'] for b in info['instances']])
        metric.process({}, [dict(
            img_id=info['img_id'], ori_shape=(info['height'], info['width']),
            pred_instances=dict(bboxes=boxes, labels=labels,
                                scores=torch.ones(len(boxes))))])
    result = metric.evaluate(len(ds))
    assert result['coco/bbox_mAP'] == pytest.approx(1.0)


def test_plain_coco_dataset_reads_the_files(root):
    from mmdet.datasets import CocoDataset
    folder = catalog.ensure('trees')
    ds = CocoDataset(data_root=str(folder),
                     ann_file='annotations/instances_val.json',
                     data_prefix=dict(img='val/'),
                     metainfo=dict(classes=('tree', )), test_mode=True)
    assert len(ds) == 11
    assert Path(ds.get_data_info(0)['img_path']).is_file()


def test_prepare_cli_prints_summary(root, capsys):
    assert prepare.main(['--names', 'trees', '--verify']) == 0
    out = capsys.readouterr().out
    assert 'trees' in out and 'train' in out and 'boxes' in out


# ------------------------------------------------------ composite masks
# pycocotools' decode trips numpy 2's copy-keyword deprecation per call
quiet_pycocotools = pytest.mark.filterwarnings(
    'ignore:__array__ implementation:DeprecationWarning')


def _composite_anns(split):
    coco = COCO(str(catalog.ensure('composite') /
                    f'annotations/instances_{split}.json'))
    return coco, coco.loadAnns(coco.getAnnIds())


@quiet_pycocotools
@pytest.mark.parametrize('split', ['train', 'val'])
def test_composite_masks_are_the_item_pixels(split, root):
    from pycocotools import mask as mask_utils
    coco, anns = _composite_anns(split)
    meta = cache.read_manifest(catalog.ensure('composite'))['meta']
    assert meta['splits'][split]['masks'] == len(anns)
    for ann in anns:
        img = coco.imgs[ann['image_id']]
        rle = ann['segmentation']
        assert isinstance(rle['counts'], str)  # compressed RLE, JSON-ready
        assert rle['size'] == [img['height'], img['width']]
        mask = coco.annToMask(ann).astype(bool)
        assert mask.shape == (img['height'], img['width'])
        # area: exactly the annotation's (the same pixels define both)
        assert mask.sum() == ann['area'] == mask_utils.area(rle)
        # inside the box, and the box is the mask's tight box
        x, y, w, h = ann['bbox']
        assert not mask.sum() - mask[y:y + h, x:x + w].sum()
        ys, xs = np.nonzero(mask)
        assert [xs.min(), ys.min(), xs.max() + 1 - xs.min(),
                ys.max() + 1 - ys.min()] == [x, y, w, h]
    # items never overlap, so neither do their masks
    for img_id in coco.getImgIds():
        stack = [coco.annToMask(a) for a in
                 coco.loadAnns(coco.getAnnIds(imgIds=img_id))]
        assert np.sum(stack, axis=0).max() <= 1


@quiet_pycocotools
def test_composite_segm_eval_of_ground_truth_is_perfect(root):
    from pycocotools.cocoeval import COCOeval
    coco, anns = _composite_anns('val')
    dets = coco.loadRes([dict(image_id=a['image_id'],
                              category_id=a['category_id'],
                              segmentation=a['segmentation'], score=1.0)
                         for a in anns])
    ev = COCOeval(coco, dets, 'segm')
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    # AP, AP50, AP75, APS, APM, APL: all perfect (every range has objects)
    assert ev.stats[:6] == pytest.approx([1.0] * 6)


@quiet_pycocotools
def test_mmdet_loads_composite_masks_and_scores_segm(root):
    """LoadAnnotations(with_mask=True) decodes every mask (none ignored);
    CocoMetric segm of the loaded masks against the JSON gives 1.0."""
    from mmdet.evaluation import CocoMetric
    folder = catalog.ensure('composite')
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = EmbeddedCocoDataset('composite', 'val', test_mode=True,
                                 pipeline=pipeline)
        metric = CocoMetric(
            ann_file=str(folder / 'annotations/instances_val.json'),
            metric=['bbox', 'segm'])
        metric.dataset_meta = ds.metainfo
        for i in range(len(ds)):
            res = ds[i]
            masks = res['gt_masks']
            assert not res['gt_ignore_flags'].any()
            assert masks.masks.shape == (len(res['gt_bboxes']),
                                         *res['img'].shape[:2])
            # the decoded masks fill their boxes tightly
            assert torch.equal(masks.get_bboxes('hbox').tensor,
                               res['gt_bboxes'].tensor)
            n = len(masks)
            metric.process({}, [dict(
                img_id=res['img_id'], ori_shape=res['ori_shape'],
                pred_instances=dict(
                    bboxes=res['gt_bboxes'].tensor,
                    labels=torch.as_tensor(res['gt_bboxes_labels']),
                    scores=torch.ones(n),
                    masks=torch.as_tensor(masks.masks).bool()))])
        result = metric.evaluate(len(ds))
    for kind in ('bbox', 'segm'):
        assert result[f'coco/{kind}_mAP'] == pytest.approx(1.0)
        assert result[f'coco/{kind}_mAP_l'] == pytest.approx(1.0)
