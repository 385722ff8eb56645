"""The ranking tool normalises inputs as training did: the config's top-level
``data_preprocessor`` is the model's (mmengine's Runner merges it too)."""
import pytest
import torch

from cream_mm.evaluation.ranking import _norm_key, load_search_model


@pytest.mark.parametrize('config', ['configs/search/tiny_cream_embedded.py',
                                    'configs/search/tiny_sandwich_embedded.py'])
def test_search_model_gets_the_config_preprocessor(config):
    cfg, model = load_search_model(config)
    pre = model.data_preprocessor
    assert cfg.model.get('data_preprocessor') is None  # only top-level
    assert torch.allclose(pre.mean.flatten(), torch.full((3, ), 72.94))
    assert torch.allclose(pre.std.flatten(), torch.full((3, ), 90.02))
    assert _norm_key(model) == 'mean=72.94,72.94,72.94 std=90.02,90.02,90.02'
    x = torch.full((3, 4, 4), 163, dtype=torch.uint8)
    out = pre(dict(inputs=[x]), False)['inputs']
    assert torch.allclose(out, torch.full_like(out, (163 - 72.94) / 90.02))
