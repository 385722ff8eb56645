"""The OpenMMLab model index: model-index.yml imports the Cream and AlphaNet
metafiles; each entry's FLOPs / params equal our counters and the built
model, its results the paper's numbers."""
from pathlib import Path

import pytest
import yaml
from mmengine.config import Config
from mmengine.registry import DefaultScope

import cream_mm  # noqa: F401
from cream_mm.models.attentive_complexity import attentive_cost
from cream_mm.models.complexity import arch_cost

ROOT = Path(__file__).resolve().parents[1]
CREAM, ALPHANET = 'configs/cream/metafile.yml', 'configs/alphanet/metafile.yml'
# the paper's ImageNet-1k top-1 / top-5 of the released models
CREAM_PAPER = {'cream-14m': (53.8, 77.2), 'cream-43m': (66.3, 86.7),
               'cream-114m': (72.8, 90.8), 'cream-287m': (77.6, 93.3),
               'cream-481m': (79.2, 94.2), 'cream-604m': (80.0, 94.7)}
# AlphaNet README's top-1 of its released A0-A6 (A5 = a5-small, A5-1 =
# a5-base); no top-5 is reported
ALPHANET_PAPER = {'alphanet-a0': 77.87, 'alphanet-a1': 78.94,
                  'alphanet-a2': 79.20, 'alphanet-a3': 79.41,
                  'alphanet-a4': 80.01, 'alphanet-a5-small': 80.29,
                  'alphanet-a5-base': 80.62, 'alphanet-a6': 80.78}
SPEC = {
    CREAM: dict(collection='Cream', paper=CREAM_PAPER, cost=arch_cost,
                flops='flops',  # the paper's convention (complexity.py)
                title=('Cream of the Crop: Distilling Prioritized Paths For '
                       'One-Shot Neural Architecture Search'),
                url='https://arxiv.org/abs/2010.15821'),
    ALPHANET: dict(collection='AlphaNet', paper=ALPHANET_PAPER,
                   cost=attentive_cost, flops='macs',  # AttentiveNAS's
                   title=('AlphaNet: Improved Training of Supernets with '
                          'Alpha-Divergence'),  # ICML 2021
                   url='https://arxiv.org/abs/2102.07954'),
}


def _meta(path):
    return yaml.safe_load((ROOT / path).read_text())


def _entries():
    return [(path, arch) for path, spec in SPEC.items()
            for arch in spec['paper']]


def test_model_index_imports_both_metafiles():
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    assert index == {'Import': [CREAM, ALPHANET]}
    for path in index['Import']:
        assert (ROOT / path).is_file()


@pytest.mark.parametrize('path', list(SPEC))
def test_collection(path):
    spec = SPEC[path]
    (coll, ) = _meta(path)['Collections']
    assert coll['Name'] == spec['collection']
    assert coll['Metadata']['Training Data'] == 'ImageNet-1k'
    assert coll['Paper'] == dict(Title=spec['title'], URL=spec['url'])
    assert (ROOT / coll['Code']['URL']).is_file()
    assert (ROOT / coll['README']).is_file()


@pytest.mark.parametrize('path', list(SPEC))
def test_one_entry_per_released_model(path):
    spec = SPEC[path]
    models = _meta(path)['Models']
    names = [m['Name'] for m in models]
    assert len(set(names)) == len(names)
    assert [n.split('_')[0] for n in names] == list(spec['paper'])
    for m in models:
        assert m['In Collection'] == spec['collection']
        assert 'Weights' not in m  # none hosted (see the file's header)
        assert m['Metadata']['Training Data'] == 'ImageNet-1k'
        (res, ) = m['Results']
        assert (res['Dataset'], res['Task']) == ('ImageNet-1k',
                                                 'Image Classification')
        arch = m['Name'].split('_')[0]
        metrics = res['Metrics']
        if path == CREAM:
            got = (metrics['Top 1 Accuracy'], metrics['Top 5 Accuracy'])
        else:
            assert set(metrics) == {'Top 1 Accuracy'}
            got = metrics['Top 1 Accuracy']
        assert got == spec['paper'][arch]


@pytest.mark.parametrize('path,arch', _entries())
def test_config_flops_and_params(path, arch):
    from mmpretrain.registry import MODELS
    spec = SPEC[path]
    (m, ) = [m for m in _meta(path)['Models']
             if m['Name'].startswith(arch + '_')]
    cost = spec['cost'](arch)
    assert m['Metadata']['FLOPs'] == getattr(cost, spec['flops'])
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
    assert len(index.models) == len(CREAM_PAPER) + len(ALPHANET_PAPER)
    collections = [m.in_collection for m in index.models]
    assert collections == (['Cream'] * len(CREAM_PAPER)
                           + ['AlphaNet'] * len(ALPHANET_PAPER))
    for m in index.models:
        assert (ROOT / m.config).is_file()
        assert m.weights is None
