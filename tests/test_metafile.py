"""The OpenMMLab model index (configs/cream/metafile.yml, model-index.yml)."""
from pathlib import Path

import pytest
import yaml
from mmengine.config import Config
from mmengine.registry import DefaultScope

import cream_mm  # noqa: F401
from cream_mm.models.complexity import arch_cost

ROOT = Path(__file__).resolve().parents[1]
META = ROOT / 'configs/cream/metafile.yml'
# the paper's ImageNet-1k top-1 / top-5 of the released models
PAPER = {'cream-14m': (53.8, 77.2), 'cream-43m': (66.3, 86.7),
         'cream-114m': (72.8, 90.8), 'cream-287m': (77.6, 93.3),
         'cream-481m': (79.2, 94.2), 'cream-604m': (80.0, 94.7)}
TITLE = ('Cream of the Crop: Distilling Prioritized Paths For One-Shot '
         'Neural Architecture Search')


@pytest.fixture(scope='module')
def meta():
    return yaml.safe_load(META.read_text())


def test_model_index_imports_the_metafile():
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    assert index == {'Import': ['configs/cream/metafile.yml']}
    for path in index['Import']:
        assert (ROOT / path).is_file()


def test_collection(meta):
    (coll, ) = meta['Collections']
    assert coll['Name'] == 'Cream'
    assert coll['Metadata']['Training Data'] == 'ImageNet-1k'
    assert coll['Paper'] == dict(Title=TITLE,
                                 URL='https://arxiv.org/abs/2010.15821')
    assert (ROOT / coll['Code']['URL']).is_file()
    assert (ROOT / coll['README']).is_file()


def test_one_entry_per_released_model(meta):
    models = meta['Models']
    names = [m['Name'] for m in models]
    assert len(set(names)) == len(names)
    assert [n.split('_')[0] for n in names] == list(PAPER)
    for m in models:
        assert m['In Collection'] == 'Cream'
        assert 'Weights' not in m  # none hosted (see the file's header)
        assert m['Metadata']['Training Data'] == 'ImageNet-1k'
        (res, ) = m['Results']
        assert (res['Dataset'], res['Task']) == ('ImageNet-1k',
                                                 'Image Classification')
        arch = m['Name'].split('_')[0]
        assert (res['Metrics']['Top 1 Accuracy'],
                res['Metrics']['Top 5 Accuracy']) == PAPER[arch]


@pytest.mark.parametrize('arch', list(PAPER))
def test_config_flops_and_params(meta, arch):
    from mmpretrain.registry import MODELS
    (m, ) = [m for m in meta['Models'] if m['Name'].startswith(arch + '_')]
    cost = arch_cost(arch)
    assert m['Metadata']['FLOPs'] == cost.flops  # paper convention
    assert m['Metadata']['Parameters'] == cost.params
    config = ROOT / m['Config']
    assert config.is_file()
    cfg = Config.fromfile(str(config))
    assert cfg.model.backbone.arch == arch
    # the exact count of the model the config builds
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) == cost.params


def test_modelindex_library_reads_it():
    modelindex = pytest.importorskip('modelindex')
    index = modelindex.load(str(ROOT / 'model-index.yml'))
    assert len(index.models) == len(PAPER)
    for m in index.models:
        assert (ROOT / m.config).is_file()
        assert m.in_collection == 'Cream' and m.weights is None
