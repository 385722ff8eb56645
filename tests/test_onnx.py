"""ONNX export of a classifier and a detection backbone matches PyTorch."""
import onnx
import pytest

from tools.export_onnx import main as export_main


def test_export_classifier(tmp_path):
    out = tmp_path / 'c.onnx'
    res = export_main(['configs/cream/cream-14m_16xb128_in1k.py',
                       '--out', str(out)])
    assert res['outputs'] == [(1, 1000)] and res['max_abs_diff'] < 1e-4
    onnx.checker.check_model(str(out))


def test_export_detection_backbone(tmp_path):
    out = tmp_path / 'bb.onnx'
    res = export_main(['configs/retinanet/retinanet_cream-s_fpn_1x_coco.py',
                       '--shape', '128', '160', '--out', str(out)])
    assert res['outputs'] == [(1, 40, 16, 20), (1, 96, 8, 10),
                              (1, 320, 4, 5)]


def test_export_refuses_wrong_checkpoint(tmp_path):
    import torch
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {'backbone.x': torch.zeros(1)}}, bad)
    with pytest.raises(Exception, match='missing'):
        export_main(['--arch', 'cream-14m', '--checkpoint', str(bad),
                     '--out', str(tmp_path / 'x.onnx')])
    assert not (tmp_path / 'x.onnx').exists()
