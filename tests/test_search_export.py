"""Final selection, export (arch + configs + weights), evolution, plot."""
import sys
from pathlib import Path

import torch
from mmengine.config import Config

from cream_mm.arch import parse_arch
from cream_mm.models.complexity import arch_cost
from cream_mm.search import EvolutionSearch, export_arch, select_from_board
from cream_mm.search.hooks import plot_pareto

sys.path.insert(0, str(Path(__file__).parent))
from test_search_cream import batches, make_model  # noqa: E402

torch.set_num_threads(1)


def test_select_from_board_ranks_all_paths():
    model = make_model()
    rows = select_from_board(model, batches(1, seed=4))
    assert len(rows) == 3
    assert rows[0]['top1'] >= rows[-1]['top1']
    assert model._val_batches is None  # temporary batches only


def test_export_writes_arch_configs_and_inherited_weights(tmp_path):
    from mmpretrain.registry import MODELS
    model = make_model()
    arch = model.board_arch(0)
    summary = export_arch(model, arch, tmp_path, name='best')
    text = (tmp_path / 'best.arch').read_text().strip()
    assert parse_arch(text) == arch
    assert summary['flops'] == arch_cost(arch, 32, 4).flops
    cls = Config.fromfile(str(tmp_path / 'best_cls.py'))
    assert cls.model.backbone.arch == text
    assert cls.model.head.num_classes == 4
    det = Config.fromfile(str(tmp_path / 'best_retinanet.py'))
    assert det.model.backbone.arch == text and det.model.type == 'RetinaNet'
    # the inherited weights load strictly into the exported classifier
    cls.model.head.update(head_channels=16)
    clf = MODELS.build(cls.model)
    state = torch.load(tmp_path / 'best_inherited.pth', weights_only=True)
    clf.load_state_dict(state['state_dict'], strict=True)
    x = torch.randn(2, 3, 32, 32)
    model.eval(), clf.eval()
    with torch.no_grad():
        assert torch.allclose(clf(x), model.forward_path(x, arch), atol=1e-6)


def test_evolution_stays_in_range_and_is_reproducible():
    def run():
        model = make_model(flops_range=(4e6, 6e6))
        model.attach_search_val(batches(1, seed=4))
        return EvolutionSearch(model, population=6, generations=2,
                               parents=3, mutations=3, crossovers=3).run()
    rows = run()
    assert len(rows) >= 8
    assert all(4e6 <= r['flops'] <= 6e6 for r in rows)
    assert all(r['flops'] == arch_cost(r['arch'], 32, 4).flops
               for r in rows)
    assert rows == run()


def test_pareto_plot_is_png(tmp_path):
    board = [dict(flops=5., score=20.), dict(flops=4., score=18.)]
    scored = board + [dict(flops=6., score=10.)]
    plot_pareto(scored, board, tmp_path / 'p.png')
    assert (tmp_path / 'p.png').read_bytes()[:4] == b'\x89PNG'


def test_tiny_search_export_chains_to_embedded_configs(tmp_path):
    """The tiny search's export names the embedded classifier and trees
    RetinaNet: the exported configs build, retrain at the search's 32 px,
    and the inherited weights load strictly (search -> retrain -> detect
    by files alone)."""
    from mmdet.registry import MODELS as DET_MODELS
    from mmpretrain.registry import MODELS
    import cream_mm  # noqa: F401
    root = Path(__file__).parents[1] / 'configs'
    search = Config.fromfile(str(root / 'search/tiny_cream_embedded.py'))
    export = search.custom_hooks[0].export
    model = MODELS.build(search.model)
    arch = model.board_arch(0)
    summary = export_arch(model, arch, tmp_path, **export)
    cls = Config.fromfile(summary['cls_config'])
    assert summary['cls_base'].endswith('embedded/cream-14m_fmnist.py')
    assert cls.train_dataloader.dataset.type == 'EmbeddedClsDataset'
    assert cls.model.backbone.arch == summary['arch']
    assert cls.train_dataloader.dataset.pipeline[0].scale == (32, 32)
    assert cls.val_dataloader.dataset.pipeline[0].scale == (32, 32)
    assert cls.train_cfg.max_iters == 200  # the embedded recipe
    clf = MODELS.build(cls.model)
    state = torch.load(summary['inherited'], weights_only=True)
    clf.load_state_dict(state['state_dict'], strict=True)
    det = Config.fromfile(summary['det_config'])
    assert det.model.backbone.arch == summary['arch']
    assert det.train_dataloader.dataset.type == 'EmbeddedCocoDataset'
    assert det.model.bbox_head.num_classes == 1
    DET_MODELS.build(det.model)
    # the SPOS baseline exports the same way
    spos = Config.fromfile(str(root / 'search/tiny_spos_embedded.py'))
    assert spos.custom_hooks[0].export == export
