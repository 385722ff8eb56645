"""Print FLOPs and parameters of a config's model, in both conventions.

    python tools/get_flops.py configs/cream/cream-287m_16xb128_in1k.py
    python tools/get_flops.py configs/retinanet/retinanet_cream-s_fpn_1x_coco.py --shape 800 1333
    python tools/get_flops.py --arch 'k3e4|k5e6*2|k5e6*2|k3e6|k5e6@64'

For a Cream backbone the count is analytic (:mod:`cream_mm.models.complexity`):
"paper" FLOPs are what the paper's tables report (thop 0.0.31 convention),
MACs are pure conv/FC multiply-adds. For a detector the backbone is counted
the same way and the whole model's multiply-adds come from mmengine's traced
counter (FlopAnalyzer).
"""
import argparse
import functools
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

import cream_mm  # noqa: E402,F401
from cream_mm.arch import format_arch, parse_arch  # noqa: E402
from cream_mm.models.complexity import arch_cost  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='FLOPs/params of a config')
    p.add_argument('config', nargs='?', help='config file')
    p.add_argument('--arch', help='count an arch string / released name '
                   'instead of a config')
    p.add_argument('--shape', type=int, nargs='+',
                   help='input H [W]; default: the arch resolution (224 if '
                   'none) for classifiers, 800 1333 for detectors')
    p.add_argument('--num-classes', type=int, default=None)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    if not args.config and not args.arch:
        p.error('give a config or --arch')
    if args.shape is not None and (len(args.shape) not in (1, 2) or
                                   min(args.shape) < 32):
        p.error(f'argument --shape: {" ".join(map(str, args.shape))}; give '
                'H or H W, each at least 32 (a Cream backbone has stride 32)')
    if args.num_classes is not None and args.num_classes < 1:
        p.error(f'argument --num-classes: {args.num_classes}; at least 1')
    if args.config and not osp.isfile(args.config):
        p.error(f"argument config: file '{args.config}' does not exist")
    return args


def _fmt(n):
    return f'{n / 1e6:.2f} M'


def report(arch, hw, num_classes, with_head):
    cost = arch_cost(arch, tuple(hw), num_classes=num_classes or 1000,
                     with_head=with_head)
    part = 'classifier' if with_head else 'backbone'
    lines = [f'arch:    {format_arch(parse_arch(arch))}',
             f'input:   3x{hw[0]}x{hw[1]}  ({part})',
             f'FLOPs (paper, thop-0.0.31 convention): {_fmt(cost.flops)}',
             f'MACs (conv+FC multiply-adds):           {_fmt(cost.macs)}',
             f'params:                                 {_fmt(cost.params)} '
             f'({cost.params:,})']
    return cost, lines


def main(argv=None):
    args = parse_args(argv)
    if args.arch:
        a = parse_arch(args.arch)
        size = args.shape or [a.resolution or 224]
        hw = (size[0], size[-1])
        _, lines = report(a, hw, args.num_classes, True)
        print('\n'.join(lines))
        return
    if not osp.isfile(args.config):
        raise SystemExit(f'config: no file at {args.config!r}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    backbone = cfg.model.get('backbone', {})
    if backbone.get('type', '').split('.')[-1] == 'AttentiveNet':
        return report_attentive(cfg, args)
    if backbone.get('type') not in ('CreamNet', 'mmdet.CreamNet',
                                    'mmpretrain.CreamNet'):
        raise SystemExit(f'model.backbone.type is {backbone.get("type")!r}; '
                         'this tool counts CreamNet backbones')
    arch = parse_arch(backbone.get('arch', 'cream-287m'))
    is_cls = cfg.model.get('type') == 'ImageClassifier'
    if is_cls:
        size = args.shape or [arch.resolution or 224]
    else:
        size = args.shape or [800, 1333]
    hw = (size[0], size[-1])
    num_classes = args.num_classes or cfg.model.get('head', {}).get(
        'num_classes', 1000)
    if is_cls:
        _, lines = report(arch, hw, num_classes, True)
        print('\n'.join(lines))
        return
    _, lines = report(arch, hw, None, False)
    print('\n'.join(lines))
    print(f'whole-model MACs (mmengine FlopAnalyzer): '
          f'{_fmt(count_model_macs(cfg, hw))}')


def report_attentive(cfg, args):
    """An AttentiveNAS / AlphaNet backbone: AttentiveNAS's counting (conv +
    FC multiply-adds, the AlphaNet table's MFLOPs), analytic."""
    from cream_mm.models.attentive_arch import parse_attentive_arch
    from cream_mm.models.attentive_complexity import attentive_cost
    arch = parse_attentive_arch(cfg.model.backbone.get('arch', 'alphanet-a0'))
    is_cls = cfg.model.get('type') == 'ImageClassifier'
    size = args.shape or ([arch.resolution] if is_cls else [800, 1333])
    hw = (size[0], size[-1])
    if hw[0] != hw[1] or not is_cls:
        print(f'arch:    {arch}\ninput:   3x{hw[0]}x{hw[1]}  (whole model)')
        print(f'whole-model MACs (mmengine FlopAnalyzer): '
              f'{_fmt(count_model_macs(cfg, hw))}')
        return
    a = parse_attentive_arch(str(arch).replace(f'r{arch.resolution}|',
                                               f'r{hw[0]}|'))
    cost = attentive_cost(a, args.num_classes or cfg.model.head.num_classes)
    print(f'arch:    {arch}\ninput:   3x{hw[0]}x{hw[1]}  (classifier)\n'
          f'MACs (conv+FC multiply-adds, AlphaNet "FLOPs"): '
          f'{_fmt(cost.macs)}\n'
          f'params:  {_fmt(cost.params)} ({cost.params:,})')


def count_model_macs(cfg, hw):
    """Multiply-adds of the whole model (tensor mode) by mmengine's counter."""
    from mmengine.analysis import FlopAnalyzer
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = cfg.model.copy()
    model_cfg.backbone = dict(model_cfg.backbone, init_cfg=None)
    model = MODELS.build(model_cfg).eval()
    # two-stage detectors need data samples in tensor mode (as mmdet's tool)
    from mmdet.structures import DetDataSample
    sample = DetDataSample(metainfo=dict(
        img_shape=hw, ori_shape=hw, pad_shape=hw, batch_input_shape=hw,
        scale_factor=(1., 1.)))
    forward = functools.partial(model._forward,
                                batch_data_samples=[sample])
    model.forward = forward
    fa = FlopAnalyzer(model, (torch.zeros(1, 3, *hw), ))
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    ops = fa.by_operator()
    return sum(v for k, v in ops.items() if k in ('conv', 'linear',
                                                   'addmm', 'matmul'))


if __name__ == '__main__':
    main()
