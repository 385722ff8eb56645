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


def _meta_run(meta_lr: float, steps: int):
    """Eq. 4 + Eq. 6 on a board whose right teacher is known: one path
    right on every image (logits 4 at the label), three broken ones
    confidently wrong (logits 8 at another class); the student is fixed,
    R is the CE of the simulated step on the same batch. Returns rho of
    the four teachers before and after ``steps`` meta updates of the
    teacher of largest rho."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from test_search_cream import NUM_CLASSES, make_model

    from cream_mm.models.losses import soft_cross_entropy
    model = make_model(meta=dict(interval=1, match_images=8, hidden=16,
                                 risk_on='train_batch'))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, 32, 32, generator=g)
    y = torch.randint(0, NUM_CLASSES, (16, ), generator=g)
    arch = model.sampler.sample()
    params = model.path_parameters(arch)
    z = model.aux_logits(x, arch)
    teachers = [4 * F.one_hot(y, NUM_CLASSES).float()] + [
        8 * F.one_hot((y + k) % NUM_CLASSES, NUM_CLASSES).float()
        for k in range(1, 4)]
    diffs = torch.stack([t[:8] - z[:8] for t in teachers])
    opt = torch.optim.SGD(model.meta_net.parameters(), lr=meta_lr)
    with torch.no_grad():
        before = model.meta_net(diffs)
    for _ in range(steps):
        with torch.no_grad():
            rhos = model.meta_net(diffs)
        j = int(rhos.argmax())
        s = model.forward_path(x, arch)
        ce = F.cross_entropy(s, y)
        kd = soft_cross_entropy(s, teachers[j])
        g_ce = torch.autograd.grad(ce, list(params.values()),
                                   retain_graph=True)
        g_kd = torch.autograd.grad(kd, list(params.values()))
        grads, _ = model.meta_hypergradient(params, g_ce, g_kd, diffs[j],
                                            float(rhos[j]), 0.1, arch, x, y)
        for p, gr in zip(model.meta_net.parameters(), grads):
            p.grad = gr
        opt.step()
        opt.zero_grad()
    with torch.no_grad():
        return before, model.meta_net(diffs)


def test_meta_network_learns_the_right_teacher_through_eq6():
    """With a learning rate that lets it move, Eq. 6 makes the meta network
    prefer the one good board path over broken ones; at the paper's 1e-4
    the same updates leave every rho within 1e-4 of where it started."""
    before, after = _meta_run(1.0, 20)
    assert float((before - 0.5).abs().max()) < 5e-3  # rho ~ 1/2 at init
    assert float(before.max() - before.min()) < 5e-3  # no preference
    assert int(after.argmax()) == 0
    assert float(after[0] - after[1:].max()) > 0.01
    before, after = _meta_run(1e-4, 10)
    assert float((after - before).abs().max()) < 1e-4


def test_ops_off_the_sampled_path_are_not_decayed_or_moved_by_momentum():
    """Weight sharing (SPOS, Eq. 5's supernet step): an op that had a
    momentum buffer but is not on the sampled path keeps its weights
    bit for bit (grad None: SGD skips it -- no weight decay, no stale
    momentum), while the path's own ops move."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from test_search_cream import batches, make_model

    from cream_mm.search import CreamOptimWrapperConstructor
    model = make_model(matching='none', use_board=False)
    optim = CreamOptimWrapperConstructor(dict(supernet=dict(optimizer=dict(
        type='SGD', lr=0.1, momentum=0.9, weight_decay=0.1))))(model)
    a = model.sampler.sample()
    b = next(p for p in iter(model.sampler.sample, None)
             if model.space.encode(p)[0] != model.space.encode(a)[0])
    only_a = set(model.path_parameters(a)) - set(model.path_parameters(b))
    assert only_a
    data = batches(3)
    for arch, batch in ((a, data[0]), (b, data[1])):
        code, res = model.space.encode(arch)
        cost = float(model.sampler.cost(arch))
        model.sampler.sample_code = lambda: (tuple(code), res, cost)
        before = {n: p.detach().clone()
                  for n, p in model.named_parameters()}
        model.train_step(batch, optim)
    after = dict(model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in only_a)
    moved = set(model.path_parameters(b))
    assert all(not torch.equal(before[n], after[n]) for n in moved
               if n.startswith('backbone.blocks.1.'))


PAPER_SEARCHES = sorted(
    p.name for p in (CONFIGS / 'search').glob('*.py')
    if not p.name.startswith('tiny_'))


@pytest.mark.parametrize('name', PAPER_SEARCHES)
def test_paper_held_out_subset_is_a_seeded_sample(name):
    """Item 4 for every paper-scale search (Cream, ablations, AlphaNet,
    K-shot): the held-out images are a seeded random sample of val, never
    its first N; the pipeline sits on the wrapped dataset (a wrapper with a
    pipeline key does not build)."""
    cfg = Config.fromfile(str(CONFIGS / 'search' / name))
    val = cfg.search_val_dataloader.dataset
    assert val.type == 'SeededSubset', name
    assert val.indices == 2048 and val.offset == 0
    assert 'pipeline' not in val and val.dataset.pipeline
    assert 'indices' not in val.dataset
