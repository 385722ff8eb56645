"""Fidelity of the search to the paper: the held-out subset is a seeded
random sample, the final selection (Alg. 1 line 14) uses data disjoint
from it, and the meta network of Eq. 4 learns through Eq. 6 when the right
teacher is known."""
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from cream_mm.datasets import SeededSubset, ranges_overlap
from cream_mm.search.hooks import CreamSearchHook

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[1] / 'configs'


class ClassSorted(torch.utils.data.Dataset):
    """50 classes x 20 images, stored class after class (a class-folder
    layout)."""

    labels = np.repeat(np.arange(50), 20)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return dict(gt_label=int(self.labels[i]), index=i)

    def get_cat_ids(self, i):
        return [int(self.labels[i])]


def test_seeded_subset_covers_the_classes_of_a_class_sorted_dataset():
    base = ClassSorted()
    first = {int(base.labels[i]) for i in range(100)}  # indices=100
    sub = SeededSubset(base, indices=100, seed=0)
    assert len(first) == 5
    assert len(set(sub.get_gt_labels().tolist())) >= 40
    # a fixed function of the seed: the same on every rank and resume
    again = SeededSubset(ClassSorted(), indices=100, seed=0)
    assert np.array_equal(sub.indices, again.indices)
    assert not np.array_equal(
        sub.indices, SeededSubset(base, indices=100, seed=1).indices)
    rest = SeededSubset(base, indices=None, seed=0, offset=100)
    assert len(rest) == 900 and not set(rest.indices) & set(sub.indices)
    assert sub[3]['index'] == int(sub.indices[3])
    with pytest.raises(ValueError, match='offset=950, indices=100'):
        SeededSubset(base, indices=100, offset=950)


def test_tiny_search_subset_is_random_and_final_data_disjoint():
    cfg = Config.fromfile(str(CONFIGS / 'search/tiny_cream_embedded.py'))
    val, final = (cfg.search_val_dataloader.dataset,
                  cfg.final_dataloader.dataset)
    assert val.type == final.type == 'SeededSubset'
    assert ranges_overlap(val, final) is False
    import cream_mm.datasets  # noqa: F401
    from mmpretrain.registry import DATASETS
    v, f = DATASETS.build(val), DATASETS.build(final)
    assert (len(v), len(f)) == (512, 2048)
    assert not set(v.indices) & set(f.indices)
    assert v.dataset.split == f.dataset.split == 'search_val'
    labels = np.bincount(v.get_gt_labels(), minlength=10)
    assert labels.min() >= 30  # all ten classes, roughly balanced


def _runner():
    records = []
    logger = SimpleNamespace(warning=records.append)
    return SimpleNamespace(logger=logger), records


def test_final_board_refuses_data_overlapping_the_scoring_subset():
    inner = dict(type='EmbeddedClsDataset', split='search_val')
    sub = dict(type='SeededSubset', indices=512, seed=0, dataset=inner)
    loader = dict(dataset=sub)

    def hook(final_cfg, policy='error'):
        h = CreamSearchHook(final='board', final_overlap=policy)
        h.val_cfg, h.final_cfg = loader, final_cfg
        return h
    runner, records = _runner()
    with pytest.raises(ValueError, match='without final_dataloader'):
        hook(None)._check_final_data(runner)
    for final in (loader,  # the subset itself
                  dict(dataset=dict(sub, offset=256)),  # a shifted range
                  dict(dataset=dict(inner, indices=1000)),  # its dataset
                  dict(dataset=dict(sub, seed=1, offset=512))):
        with pytest.raises(ValueError, match='overlaps'):
            hook(final)._check_final_data(runner)
    disjoint = dict(dataset=dict(sub, offset=512, indices=None))
    hook(disjoint)._check_final_data(runner)
    hook(dict(dataset=dict(inner, split='val')))._check_final_data(runner)
    assert records == []
    hook(loader, 'warn')._check_final_data(runner)
    assert len(records) == 1 and 'overlaps' in records[0]
    with pytest.raises(ValueError, match="final_overlap='x'"):
        CreamSearchHook(final_overlap='x')


def test_shared_images_are_counted_by_content():
    g = torch.Generator().manual_seed(0)
    imgs = [torch.randint(0, 255, (3, 4, 4), dtype=torch.uint8, generator=g)
            for _ in range(6)]
    a = [dict(inputs=imgs[:4])]
    b = [dict(inputs=[imgs[3].clone(), imgs[4]]), dict(inputs=[imgs[0]])]
    assert CreamSearchHook.shared_images(a, b) == 2
    assert CreamSearchHook.shared_images(a, [dict(inputs=imgs[4:])]) == 0
