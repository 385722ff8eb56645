"""Convert an authors' released Cream checkpoint for mmpretrain and mmdet.

    python tools/convert_official_checkpoint.py 287.pth.tar \
        checkpoints/cream-287m_in1k.pth \
        --out-backbone checkpoints/cream-287m_backbone.pth

OpenMMLab's converter form ``src dst``: ``dst`` is the classifier
checkpoint (same as ``--out-cls``, which stays as an alias).

The EMA weights (``state_dict_ema``) are preferred, ``state_dict`` is the
fallback; ``module.`` prefixes are stripped. The architecture is read off the
weights' shapes unless ``--arch`` is given. The classifier checkpoint loads
into ``ImageClassifier(backbone=CreamNet, head=CreamClsHead)``; the backbone
checkpoint holds only ``backbone.*`` keys, for mmdet's
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
Any key that does not fit is an error listing the keys.

AlphaNet / AttentiveNAS (``--layout alphanet``): the released supernet
(``alphanet_pretrained.pth.tar``) is sliced to ``--arch`` (required:
``alphanet-a0`` ... ``alphanet-a6`` or an arch string); a single-subnet
(static) checkpoint has its arch read off the weights. The classifier loads
into ``ImageClassifier(backbone=AttentiveNet, head=CreamClsHead)``. Their
supernet's BN statistics are not those of the subnet: re-calibrate before
evaluating (AlphaNet does, on 64 training batches).

    python tools/convert_official_checkpoint.py alphanet_pretrained.pth.tar \
        --layout alphanet --arch alphanet-a0 \
        --out-cls checkpoints/alphanet-a0_in1k.pth \
        --out-backbone checkpoints/alphanet-a0_backbone.pth
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from cream_mm.models.alphanet_checkpoint import (  # noqa: E402
    convert_alphanet, load_alphanet_file)
from cream_mm.models.checkpoint import convert_release  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('src', help='released .pth.tar (timm-style dict)')
    p.add_argument('dst', nargs='?', help='mmpretrain classifier checkpoint '
                   'to write (same as --out-cls)')
    p.add_argument('--arch', help='arch string or released name; default: '
                   'inferred from the weights')
    p.add_argument('--layout', default='cream', choices=['cream', 'alphanet'],
                   help='whose release: Cream (timm keys) or AlphaNet / '
                   'AttentiveNAS (mobile_inverted_conv keys)')
    p.add_argument('--resolution', type=int, help='alphanet: input size of '
                   'an inferred arch that is no released model')
    p.add_argument('--out-cls', help='mmpretrain classifier checkpoint')
    p.add_argument('--out-backbone', help='backbone-only checkpoint')
    args = p.parse_args(argv)
    if args.dst and args.out_cls and args.dst != args.out_cls:
        p.error(f"argument dst: '{args.dst}' and --out-cls "
                f"'{args.out_cls}' name two classifier outputs; give one")
    args.out_cls = args.out_cls or args.dst
    if not (args.out_cls or args.out_backbone):
        p.error('give dst (or --out-cls) and/or --out-backbone')
    if not osp.isfile(args.src):
        p.error(f"argument src: file '{args.src}' does not exist")
    if args.resolution is not None and (args.resolution < 32 or
                                        args.resolution % 32):
        p.error(f'argument --resolution: {args.resolution}; a multiple of '
                '32, at least 32')
    return args


def _save(state, meta, path):
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    torch.save(dict(state_dict=state, meta=meta), tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint
    print(f'wrote {path} ({len(state)} tensors)')


def main(argv=None):
    args = parse_args(argv)
    if args.layout == 'alphanet':
        src, entry = load_alphanet_file(args.src)
        state, arch, info = convert_alphanet(src, args.arch, path=args.src,
                                             resolution=args.resolution)
        info['source_entry'] = entry
        print(f'AlphaNet {info["layout"]} checkpoint -> arch {info["arch"]}; '
              f'{info["discarded"]} keys dropped (BN tracking buffers, '
              'identity-shortcut convs)')
        if info['layout'] == 'supernet':
            print('the supernet\'s BN statistics are not the subnet\'s: '
                  're-calibrate them before evaluating')
    else:
        state, arch, info = convert_release(args.src, args.arch)
    print(f'arch {info["arch"]} from "{info["source_entry"]}", '
          f'{info["num_classes"]} classes, all {info["num_keys"]} keys matched')
    meta = dict(arch=info['arch'], source=osp.basename(args.src),
                source_entry=info['source_entry'])
    if args.layout == 'alphanet':
        meta['layout'] = info['layout']
        if info['layout'] == 'supernet':
            meta['bn_recalibration'] = 'required'
    if args.out_cls:
        _save(state, meta, args.out_cls)
    if args.out_backbone:
        _save({k: v for k, v in state.items() if k.startswith('backbone.')},
              meta, args.out_backbone)


if __name__ == '__main__':
    main()
