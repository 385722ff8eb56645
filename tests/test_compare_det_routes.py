"""tools/compare_det_routes.py: one FLOPs band for every route, AP read
from a test log, a finished run kept on a second call."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location(
    'compare_det_routes', ROOT / 'tools' / 'compare_det_routes.py')
C = importlib.util.module_from_spec(spec)
spec.loader.exec_module(C)

LOG = ('12/02 08:00:00 - mmengine - INFO - Iter(test) [5/5]  '
       'coco/bbox_mAP: 0.1230  coco/bbox_mAP_50: 0.3010  '
       'coco/bbox_mAP_75: 0.0500  coco/bbox_mAP_s: 0.0310  '
       'coco/bbox_mAP_m: 0.1420  coco/bbox_mAP_l: -1.0000\n')


def test_random_archs_lie_in_both_searches_bands():
    archs = C.random_archs(4)
    assert len(set(archs)) == 4
    for a in archs:
        f = C.mflops(a)
        assert f['in_det_band'] and f['in_cls_band']
        assert 80 <= f['det_mflops'] <= 115 and 4 <= f['cls_mflops'] <= 6
    assert C.random_archs(4) == archs  # seeded


def test_ap_read_from_the_test_log_including_minus_one():
    ap = C.read_ap(LOG)
    assert ap['bbox_mAP'] == pytest.approx(0.123)
    assert ap['bbox_mAP_l'] == -1.0 and set(ap) == set(C.KEYS)


def test_a_finished_run_is_kept(tmp_path, monkeypatch):
    args = C.parse_args(['--det-search', 'd', '--cls-search', 'c'])
    calls = []
    monkeypatch.setattr(C, 'run', lambda *a, **k: calls.append(a) or LOG)
    C.train_and_test('k3e4', 0, tmp_path, args)
    assert len(calls) == 3  # retrain, detector, test
    (tmp_path / 'test.log').write_text(LOG)
    assert C.train_and_test('k3e4', 0, tmp_path, args)['bbox_mAP_50'] == \
        pytest.approx(0.301)
    assert len(calls) == 3  # kept
    # another architecture in the same folder (a route's search rerun) or
    # another detector schedule is trained again
    C.train_and_test('k5e6', 0, tmp_path, args)
    assert len(calls) == 6
    (tmp_path / 'test.log').write_text(LOG)
    longer = C.parse_args(['--det-search', 'd', '--cls-search', 'c',
                           '--det-iters', '1200'])
    C.train_and_test('k5e6', 0, tmp_path, longer)
    assert len(calls) == 9
    det_cmd = [str(c) for c in calls[-2][0]]
    assert 'param_scheduler.1.end=1200' in det_cmd
    assert 'train_cfg.max_iters=1200' in det_cmd


def test_the_detector_schedule_override_names_the_base_cosine_end():
    """--det-iters edits param_scheduler[1]: it must be the base's cosine
    decay, ending at the base's max_iters."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(C.DET_BASE))
    assert cfg.param_scheduler[1].type == 'CosineAnnealingLR'
    assert cfg.param_scheduler[1].end == cfg.train_cfg.max_iters == 300
    with pytest.raises(SystemExit):
        C.parse_args(['--det-search', 'd', '--cls-search', 'c',
                      '--det-iters', '20'])
