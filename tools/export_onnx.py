"""Export a Cream classifier or detection backbone to ONNX, verified by ORT.

    python tools/export_onnx.py configs/cream/cream-14m_16xb128_in1k.py \
        --checkpoint work_dirs/x/epoch_1.pth --out work_dirs/cream-14m.onnx
    python tools/export_onnx.py configs/retinanet/retinanet_cream-s_fpn_1x_coco.py \
        --backbone-only --shape 800 1333 --out work_dirs/cream-s_backbone.onnx
    python tools/export_onnx.py --arch cream-s --out cream-s.onnx

The classifier is exported with its head (logits); ``--backbone-only`` (the
default for detector configs) exports the backbone's multi-scale outputs.
Weights come from ``--checkpoint`` (strictly loaded) or the config's init.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402

import cream_mm  # noqa: E402,F401
from cream_mm.arch import parse_arch  # noqa: E402
from cream_mm.evaluation.onnx_export import export_onnx  # noqa: E402
from cream_mm.models.checkpoint import load_pretrained, load_strict  # noqa


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', nargs='?', help='config file of the model')
    p.add_argument('--arch', help='export a released name / arch string')
    p.add_argument('--checkpoint', help='weights (mmengine checkpoint), '
                   'loaded strictly')
    p.add_argument('--backbone-only', action='store_true',
                   help='export the backbone outputs (default for '
                   'detector configs)')
    p.add_argument('--shape', type=int, nargs='+', help='input H [W]')
    p.add_argument('--out', '--output-file', dest='out', required=True,
                   help='the .onnx file to write (--output-file: '
                   "mmpretrain's pytorch2onnx spelling)")
    p.add_argument('--atol', type=float, default=1e-4,
                   help='largest |ONNX - PyTorch| accepted')
    a = p.parse_args(argv)
    if not a.config and not a.arch:
        p.error('give a config or --arch')
    if a.config and not osp.isfile(a.config):
        p.error(f"argument config: file '{a.config}' does not exist")
    if a.checkpoint and '://' not in a.checkpoint and \
            not osp.isfile(a.checkpoint):
        p.error(f"argument --checkpoint: file '{a.checkpoint}' does not "
                'exist')
    if a.shape is not None and (len(a.shape) not in (1, 2) or
                                min(a.shape) < 32):
        p.error(f'argument --shape: {" ".join(map(str, a.shape))}; give H '
                'or H W, each at least 32')
    if a.atol <= 0:
        p.error(f'argument --atol: {a.atol}; must be > 0')
    return a


class _Classifier(torch.nn.Module):
    """Tensor-in, logits-out view of an mmpretrain ImageClassifier."""

    def __init__(self, clf):
        super().__init__()
        self.clf = clf

    def forward(self, x):
        return self.clf(x, mode='tensor')


def build(args):
    from mmengine.registry import MODELS, init_default_scope
    if args.arch:
        arch = parse_arch(args.arch)
        cfg = Config(dict(default_scope='mmpretrain', model=dict(
            type='ImageClassifier', backbone=dict(type='CreamNet', arch=arch),
            head=dict(type='CreamClsHead', num_classes=1000))))
    else:
        if not osp.isfile(args.config):
            raise SystemExit(f'config: no file at {args.config!r}')
        cfg = Config.fromfile(args.config)
        arch = parse_arch(cfg.model.backbone.arch)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    cfg.model.backbone.pop('init_cfg', None)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if args.checkpoint:
        load_strict(model, load_pretrained(args.checkpoint),
                    f'--checkpoint {args.checkpoint!r}')
    is_cls = cfg.model.type == 'ImageClassifier'
    if args.backbone_only or not is_cls:
        return model.backbone, arch, is_cls
    return _Classifier(model), arch, is_cls


def main(argv=None):
    args = parse_args(argv)
    model, arch, is_cls = build(args)
    if args.shape:
        shape = (args.shape[0], args.shape[-1])
    else:
        shape = arch.resolution or 224 if is_cls else (800, 1333)
    res = export_onnx(model, shape, args.out, args.atol)
    print(f'wrote {res["path"]}: outputs {res["outputs"]}, max |ONNX - '
          f'PyTorch| = {res["max_abs_diff"]:.2e}')
    return res


if __name__ == '__main__':
    main()
