"""FLOPs of a path: look-up table vs counting with forward hooks.

Prints both timings measured side by side in one run and their ratio
(target: the table >= 1000x faster), and checks that both agree. Measured
figures: ``docs/benchmarks.md`` (``benchmarks/run_all.py``).

    OMP_NUM_THREADS=1 python benchmarks/bench_flops_lut.py [--paths 20] \
        [--size 224] [--json PATH]
"""
import argparse
import time

import torch
import torch.nn as nn

from figures import Figures, add_json_arg
from cream_mm.models.supernet import CreamSupernet, SearchSpace
from cream_mm.search.flops_table import FlopsTable
from cream_mm.search.sampler import PathSampler


def hook_macs(net: CreamSupernet, arch, size: int) -> int:
    """Conv MACs of the backbone path by forward hooks (one forward)."""
    total = [0]

    def hook(m, inp, out):
        total[0] += out.numel() * (m.in_channels // m.groups) * \
            m.kernel_size[0] * m.kernel_size[1]
    hs = [m.register_forward_hook(hook) for m in net.modules()
          if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, 3, size, size), arch)
    for h in hs:
        h.remove()
    return total[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--paths', type=int, default=20)
    p.add_argument('--size', type=int, default=224)
    add_json_arg(p)
    args = p.parse_args()
    torch.set_num_threads(1)
    space = SearchSpace('mbconv', input_size=args.size)
    net = CreamSupernet(space).eval()
    table = FlopsTable(space, 'macs', with_head=False)
    sampler = PathSampler(space, table, seed=0)
    codes = [sampler.sample_code()[0] for _ in range(args.paths)]
    archs = [space.decode(c) for c in codes]
    # the tail's conv (blocks.6) is in both; FlopsTable adds the stem too
    t0 = time.perf_counter()
    hooked = [hook_macs(net, a, args.size) for a in archs]
    t_hook = (time.perf_counter() - t0) / len(archs)
    reps = 200
    t0 = time.perf_counter()
    for _ in range(reps):
        lut = [table.cost(c) for c in codes]
    t_lut = (time.perf_counter() - t0) / (reps * len(codes))
    assert all(int(a) == b for a, b in zip(lut, hooked)), (lut[:2],
                                                          hooked[:2])
    print(f'paths: {len(codes)} at {args.size}px, LUT == hooks on all')
    print(f'hook counting: {t_hook * 1e3:9.3f} ms/path')
    print(f'look-up table: {t_lut * 1e6:9.3f} us/path')
    print(f'ratio (hooks / LUT): {t_hook / t_lut:,.0f}x  (target >= 1000x)')
    fig = Figures()
    fig.add('ratio', t_hook / t_lut, 'hook counting / look-up table', 'x')
    fig.add('hook_ms', t_hook * 1e3, 'hook counting per path', 'ms')
    fig.add('lut_us', t_lut * 1e6, 'look-up table per path', 'us')
    fig.info.update(paths=len(codes), size=args.size)
    fig.dump(args.json)


if __name__ == '__main__':
    main()
