"""Conversion of release-layout checkpoints and strict pretrained loading."""
import argparse

import pytest
import torch
from mmdet.registry import MODELS as DET
from mmpretrain.registry import MODELS as CLS

from cream_mm.models import CreamClsHead, CreamNet
from cream_mm.models.checkpoint import (CheckpointMismatchError,
                                        convert_release, infer_arch)
from tools.convert_official_checkpoint import main as convert_main

ARCH = 'cream-43m'


def _release_ckpt(path, arch=ARCH, drop=None, extra=None, prefix='module.'):
    """A checkpoint in the authors' layout: timm keys, EMA + raw weights."""
    torch.manual_seed(0)
    net, head = CreamNet(arch), CreamClsHead(1000)
    raw = {**net.state_dict(), **head.state_dict()}
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in raw.items()}
    for d in (raw, ema):
        d.pop(drop, None)
        if extra:
            d[extra] = torch.zeros(3)
    torch.save({'epoch': 3, 'arch': 'cream', 'args': argparse.Namespace(lr=1),
                'state_dict': {prefix + k: v for k, v in raw.items()},
                'state_dict_ema': {prefix + k: v for k, v in ema.items()}},
               path)
    return ema


def test_convert_prefers_ema_infers_arch_and_outputs_match(tmp_path):
    src = tmp_path / 'cream.pth.tar'
    ema = _release_ckpt(src)
    cls_out, bb_out = tmp_path / 'cls.pth', tmp_path / 'bb.pth'
    convert_main([str(src), '--out-cls', str(cls_out),
                  '--out-backbone', str(bb_out)])
    clf = CLS.build(dict(type='ImageClassifier',
                         backbone=dict(type='CreamNet', arch=ARCH),
                         head=dict(type='CreamClsHead', num_classes=1000)))
    ckpt = torch.load(cls_out, weights_only=True)
    clf.load_state_dict(ckpt['state_dict'], strict=True)
    assert ckpt['meta']['source_entry'] == 'state_dict_ema'
    ref_net, ref_head = CreamNet(ARCH), CreamClsHead(1000)
    ref_net.load_state_dict({k: v for k, v in ema.items()
                             if not k.startswith(('conv_head', 'classifier'))})
    ref_head.load_state_dict({k: v for k, v in ema.items()
                              if k.startswith(('conv_head', 'classifier'))})
    x = torch.randn(2, 3, 96, 96)
    clf.eval(), ref_net.eval(), ref_head.eval()
    assert torch.allclose(clf(x), ref_head(ref_net(x)), atol=1e-5)
    # backbone-only file drives mmdet's Pretrained init (strict)
    bb = torch.load(bb_out, weights_only=True)['state_dict']
    assert all(k.startswith('backbone.') for k in bb)
    det_bb = DET.build(dict(type='CreamNet', arch=ARCH, out_indices=(2, 4, 6),
                            init_cfg=dict(type='Pretrained', prefix='backbone.',
                                          checkpoint=str(bb_out))))
    det_bb.init_weights()
    assert torch.equal(det_bb.conv_stem.weight, ema['conv_stem.weight'])


def test_infer_arch_of_every_released_model():
    from cream_mm.arch import RELEASED, parse_arch
    for name in RELEASED:
        arch = infer_arch(CreamNet(name).state_dict())
        assert arch.stages == parse_arch(name).stages


@pytest.mark.parametrize('drop,extra,match', [
    ('blocks.2.1.bn3.weight', None, 'missing'),
    (None, 'blocks.9.0.extra', 'not used'),
])
def test_mismatch_lists_keys(tmp_path, drop, extra, match):
    src = tmp_path / 'bad.pth.tar'
    _release_ckpt(src, drop=drop, extra=extra)
    with pytest.raises(CheckpointMismatchError) as e:
        convert_release(str(src), arch=ARCH)
    assert match in str(e.value) and (drop or extra) in str(e.value)


def test_wrong_arch_and_missing_file(tmp_path):
    src = tmp_path / 'c.pth.tar'
    _release_ckpt(src)
    with pytest.raises(CheckpointMismatchError, match='shape mismatches'):
        convert_release(str(src), arch='cream-14m')
    with pytest.raises(FileNotFoundError, match='no file'):
        convert_release(str(tmp_path / 'nope.pth.tar'))


def test_pretrained_init_is_strict(tmp_path):
    net = CreamNet('cream-14m')
    path = tmp_path / 'bb.pth'
    torch.save({'state_dict': {'backbone.' + k: v
                               for k, v in net.state_dict().items()}}, path)
    wrong = CreamNet('cream-43m', init_cfg=dict(
        type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    with pytest.raises(CheckpointMismatchError, match='cream|missing|shape'):
        wrong.init_weights()
    bad_prefix = CreamNet('cream-14m', init_cfg=dict(
        type='Pretrained', checkpoint=str(path), prefix='neck.'))
    with pytest.raises(CheckpointMismatchError, match='init_cfg.prefix'):
        bad_prefix.init_weights()


def test_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ('echo pwned',))
    path = tmp_path / 'evil.pth.tar'
    torch.save({'state_dict': {'x': torch.zeros(1)}, 'evil': Evil()}, path)
    with pytest.raises(CheckpointMismatchError, match='weights_only'):
        convert_release(str(path))
