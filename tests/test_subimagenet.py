"""tools/make_subimagenet.py on fake ImageNet trees of empty files."""
from pathlib import Path

import pytest

from tools.make_subimagenet import SubImageNetError, main, make_subimagenet

SMALL = ['--num-classes', '10', '--train-per-class', '25',
         '--val-per-class', '5']


def fake_imagenet(root: Path, classes: int, per_class: int, val: int = 3,
                  val_layout: str = 'folders', short: dict | None = None):
    """``train/n{i:08d}/*.JPEG`` (empty files), val in the given layout."""
    short = short or {}
    wnids = [f'n{i:08d}' for i in range(classes)]
    for wnid in wnids:
        d = root / 'train' / wnid
        d.mkdir(parents=True)
        for j in range(short.get(wnid, per_class)):
            (d / f'{wnid}_{j}.JPEG').touch()
        (d / '.DS_Store').touch()  # ignored: hidden
        (d / 'notes.txt').touch()  # ignored: not an image
    if val_layout == 'folders':
        for wnid in wnids:
            (root / 'val' / wnid).mkdir(parents=True)
            for j in range(val):
                (root / 'val' / wnid / f'val_{wnid}_{j}.JPEG').touch()
    elif val_layout == 'meta':
        (root / 'val').mkdir()
        (root / 'meta').mkdir()
        lines = []
        for k in range(classes * val):
            name = f'ILSVRC2012_val_{k + 1:08d}.JPEG'
            (root / 'val' / name).touch()
            lines.append(f'{name} {k % classes}')
        (root / 'meta' / 'val.txt').write_text('\n'.join(lines) + '\n')
    return wnids


def read_list(path):
    return [line.rsplit(' ', 1) for line in path.read_text().splitlines()]


@pytest.fixture(scope='module')
def small_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp('imagenet')
    fake_imagenet(root, classes=12, per_class=40)
    return root


def test_counts_disjointness_and_labels(small_tree, tmp_path):
    res = main([str(small_tree), '--out-dir', str(tmp_path), *SMALL])
    assert res['counts'] == dict(classes=10, train=250, val=50, test=30)
    classes = (tmp_path / 'subimagenet_classes.txt').read_text().split()
    assert len(classes) == 10 and classes == sorted(classes)
    train = read_list(tmp_path / 'subimagenet_train.txt')
    val = read_list(tmp_path / 'subimagenet_val.txt')
    test = read_list(tmp_path / 'subimagenet_test.txt')
    for rows, per_class, prefix in ((train, 25, 'train'), (val, 5, 'train'),
                                    (test, 3, 'val')):
        labels = [int(lab) for _, lab in rows]
        assert [labels.count(i) for i in range(10)] == [per_class] * 10
        for path, lab in rows:
            wnid = path.split('/')[0]
            assert classes[int(lab)] == wnid  # label i = line i
            assert (small_tree / prefix / path).is_file()
    # val is held out from the same train folder: no image in both
    assert not {p for p, _ in train} & {p for p, _ in val}
    assert len({p for p, _ in train}) == len(train)


def test_deterministic_and_seeded(small_tree, tmp_path):
    outs = {}
    for name, seed in (('a', 0), ('b', 0), ('c', 1)):
        main([str(small_tree), '--out-dir', str(tmp_path / name),
              '--seed', str(seed), *SMALL])
        outs[name] = {p.name: p.read_bytes()
                      for p in (tmp_path / name).iterdir()}
    assert outs['a'] == outs['b']
    assert outs['a']['subimagenet_train.txt'] != outs['c'][
        'subimagenet_train.txt']
    # the default seed is 0
    main([str(small_tree), '--out-dir', str(tmp_path / 'd'), *SMALL])
    assert (tmp_path / 'd' / 'subimagenet_val.txt').read_bytes() == outs[
        'a']['subimagenet_val.txt']


def test_paper_defaults(tmp_path, capsys):
    """100 classes x (250 + 50) from 120 classes x 310 files, default flags,
    default output folder <root>/meta; no val folder: no test list."""
    root = tmp_path / 'imagenet'
    fake_imagenet(root, classes=120, per_class=310, val_layout=None)
    res = main([str(root)])
    assert res['counts'] == dict(classes=100, train=25000, val=5000,
                                 test=None)
    assert res['paths']['train'] == root / 'meta' / 'subimagenet_train.txt'
    assert not (root / 'meta' / 'subimagenet_test.txt').exists()
    assert 'test:  skipped' in capsys.readouterr().out


def test_flat_val_with_meta_val_txt(tmp_path):
    root = tmp_path / 'imagenet'
    wnids = fake_imagenet(root, classes=12, per_class=40, val=2,
                          val_layout='meta')
    res = make_subimagenet(root, tmp_path / 'out', num_classes=10,
                           train_per_class=25, val_per_class=5)
    classes = res['paths']['classes'].read_text().split()
    test = read_list(res['paths']['test'])
    assert len(test) == 20
    labels = {n: int(lab) for n, lab in (line.split() for line in (
        root / 'meta' / 'val.txt').read_text().splitlines())}
    for name, lab in test:
        assert (root / 'val' / name).is_file()
        # same class as in ImageNet's own labels, renumbered
        assert classes[int(lab)] == wnids[labels[name]]


@pytest.mark.parametrize('loader', ['ImageNet', 'CustomDataset'])
def test_mmpretrain_reads_the_lists(small_tree, tmp_path, loader):
    from mmpretrain.datasets import CustomDataset, ImageNet
    main([str(small_tree), '--out-dir', str(small_tree / 'meta'), *SMALL])
    cls = dict(ImageNet=ImageNet, CustomDataset=CustomDataset)[loader]
    classes = str(small_tree / 'meta' / 'subimagenet_classes.txt')
    for split, prefix, n in (('train', 'train', 250), ('val', 'train', 50),
                             ('test', 'val', 30)):
        ds = cls(data_root=str(small_tree), data_prefix=prefix,
                 ann_file=f'meta/subimagenet_{split}.txt', classes=classes)
        assert len(ds) == n
        assert len(ds.metainfo['classes']) == 10
        assert sorted(set(ds.get_gt_labels().tolist())) == list(range(10))
        info = ds.get_data_info(0)
        assert Path(info['img_path']).is_file()
        wnid = Path(info['img_path']).parent.name
        assert ds.metainfo['classes'][info['gt_label']] == wnid


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(SubImageNetError,
                       match=r'train folder not found: .*nowhere/train'):
        make_subimagenet(tmp_path / 'nowhere')
    root = tmp_path / 'imagenet'
    fake_imagenet(root, classes=4, per_class=10, short={'n00000002': 7})
    with pytest.raises(SubImageNetError, match=r'has 4 class folders; 5 '):
        make_subimagenet(root, num_classes=5)
    with pytest.raises(SubImageNetError,
                       match=r'class n00000002 has only 7 images in .*'
                       r'train/n00000002; 10 needed'):
        make_subimagenet(root, num_classes=4, train_per_class=8,
                         val_per_class=2)
    # the command line exits with the same message, writing nothing
    with pytest.raises(SystemExit, match='class n00000002 has only 7'):
        main([str(root), '--num-classes', '4', '--train-per-class', '8',
              '--val-per-class', '2'])
    assert not (root / 'meta').exists()
    # flat val/ without meta/val.txt
    (root / 'flat').mkdir()
    fake_imagenet(root / 'flat', classes=2, per_class=3, val_layout=None)
    (root / 'flat' / 'val').mkdir()
    (root / 'flat' / 'val' / 'x.JPEG').touch()
    with pytest.raises(SubImageNetError, match=r'meta/val.txt.* missing'):
        make_subimagenet(root / 'flat', num_classes=2, train_per_class=2,
                         val_per_class=1)
