"""Memory and time of a K-shot training step vs a one-shot step on the SAME
paths (K-shot NAS Tab. 1: "no additional feature map", ~1.05x GPU memory at
K=8; target here <= 1.1x).

Three configurations, each measured in a fresh subprocess (so allocator
state and peak RSS do not leak between them), same supernet space, same
data, same sequence of paths (one seeded sampler):

* ``oneshot``: a plain :class:`CreamSupernet` + head, CE step, SGD;
* ``kshot``: :class:`KShotSupernet` (K copies) + head, the supernet step of
  Eq. 9 (lambda from the simplex-net, weights merged before the forward);
* ``kshot_simplex``: the simplex-net step of Eq. 8 (m paths on b/m images,
  gradient into the simplex-net only).

Reported per configuration:

* ``params_MB``: parameter memory (K-shot: K copies of every searched
  weight -- the (K-1)x more parameters the paper mentions);
* ``state_MB``: RSS after building and one warm-up step minus RSS after
  the imports (parameters, gradients and SGD momentum of what the warm-up
  touched);
* ``step_peak_MB``: peak RSS during a step minus RSS right before it (the
  step's transient memory: activations, merged weights, gradients not yet
  freed), max over the timed steps; glibc's ``MALLOC_MMAP_THRESHOLD_`` is
  set low so freed tensors go back to the OS and RSS tracks live memory,
  and the kernel's peak counter is reset before each step
  (``/proc/self/clear_refs``);
* ``saved_MB``: bytes autograd saves for backward in one forward
  (``torch.autograd.graph.saved_tensors_hooks``; parameters and views of
  them cost nothing and are not counted): activations, plus the merged
  weights for K-shot (the supernet step; the simplex step is not counted
  here);
* ``step_s``: median step time in that subprocess; and, in one more
  process that alternates one-shot and K-shot steps on the same paths, both
  median step times and their ratio (fairer on a loaded machine).

    OMP_NUM_THREADS=1 python benchmarks/bench_kshot_memory.py \
        [--k 8] [--size 224] [--batch 32] [--steps 4] [--depth 6] \
        [--json PATH]

Measured figures: ``docs/benchmarks.md`` (``benchmarks/run_all.py``).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from figures import Figures, add_json_arg  # noqa: E402

MODES = ('oneshot', 'kshot', 'kshot_simplex')


def rss_mb(field: str = 'VmRSS') -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def reset_peak() -> None:
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def saved_mb(fn, params) -> float:
    """MB autograd saves for backward in ``fn``; tensors that are (views
    of) parameters cost nothing and are not counted."""
    owned = {p.untyped_storage().data_ptr() for p in params}
    total = [0]

    def pack(t):
        if t.untyped_storage().data_ptr() not in owned:
            total[0] += t.numel() * t.element_size()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total[0] / 2**20


def worker(args) -> dict:
    torch.set_num_threads(1)
    import cream_mm  # noqa: F401
    rss_start = rss_mb()
    from cream_mm.models import CreamClsHead, CreamSupernet, KShotSupernet
    from cream_mm.search.samplers import build_sampler
    space = dict(name='mbconv', max_depths=args.depth, input_size=args.size)
    torch.manual_seed(0)
    if args.worker == 'oneshot':
        net = CreamSupernet(space=space)
        base = net
    else:
        net = KShotSupernet(supernet=dict(type='CreamSupernet', space=space),
                            num_shots=args.k, simplex=dict(hidden=64))
        net.simplex.warmup.fill_(False)
        base = net.supernet
    head = CreamClsHead(num_classes=1000, dropout=0.)
    sampler = build_sampler(base, 1000, seed=0)
    paths = [sampler.sample() for _ in range(args.steps + 1)]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=g)
    y = torch.randint(0, 1000, (args.batch, ), generator=g)
    if args.worker == 'kshot_simplex':
        params = list(net.simplex.parameters())
    else:
        params = [p for p in base.parameters()] + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)

    def loss_of(arch):
        if args.worker == 'oneshot':
            return F.cross_entropy(head(net(x, arch)), y)
        with torch.no_grad():
            code = net.code(arch)
        return F.cross_entropy(head(net(x, arch, code)), y)

    def step(arch):
        if args.worker != 'kshot_simplex':
            loss_of(arch).backward()
        else:  # Eq. 8 as KShotSearch.simplex_step: m paths on b/m images,
            # shots detached, one group's graph at a time
            m = args.paths
            grads = [torch.zeros_like(p) for p in params]
            archs = [arch] + [sampler.sample() for _ in range(m - 1)]
            for a, xg, yg in zip(archs, x.tensor_split(m),
                                 y.tensor_split(m)):
                loss = F.cross_entropy(head(net(
                    xg, a, net.code(a), detach_shots=True)), yg) / m
                for acc, gr in zip(grads, torch.autograd.grad(loss, params)):
                    acc += gr
            for p, gr in zip(params, grads):
                p.grad = gr
        opt.step()
        opt.zero_grad(set_to_none=True)

    rss_build = rss_mb() - rss_start
    step(paths[0])  # warm-up: grads / momentum of the first path
    state = rss_mb() - rss_start
    peaks, times = [], []
    for arch in paths[1:]:
        before = rss_mb()
        reset_peak()
        t = time.perf_counter()
        step(arch)
        times.append(time.perf_counter() - t)
        peaks.append(rss_mb('VmHWM') - before)
    saved = saved_mb(lambda: loss_of(paths[1]),
                     list(net.parameters()) + list(head.parameters()))
    n_params = sum(p.numel() * p.element_size() for p in net.parameters())
    return dict(mode=args.worker, params_MB=n_params / 2**20,
                rss_build_MB=rss_build, state_MB=state,
                step_peak_MB=max(peaks), saved_MB=saved,
                step_s=statistics.median(times))


def interleaved_times(args) -> dict:
    """Step times of one-shot and K-shot alternated in ONE process on the
    same paths (a shared, loaded machine slows both alike)."""
    torch.set_num_threads(1)
    from cream_mm.models import CreamClsHead, CreamSupernet, KShotSupernet
    from cream_mm.search.samplers import build_sampler
    space = dict(name='mbconv', max_depths=args.depth, input_size=args.size)
    torch.manual_seed(0)
    one = CreamSupernet(space=space)
    k = KShotSupernet(supernet=dict(type='CreamSupernet', space=space),
                      num_shots=args.k, simplex=dict(hidden=64))
    k.simplex.warmup.fill_(False)
    heads = [CreamClsHead(num_classes=1000, dropout=0.) for _ in range(2)]
    opts = [torch.optim.SGD(list(n.parameters()) + list(h.parameters()),
                            lr=0.01, momentum=0.9)
            for n, h in zip((one, k.supernet), heads)]
    sampler = build_sampler(one, 1000, seed=0)
    paths = [sampler.sample() for _ in range(args.steps + 1)]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=g)
    y = torch.randint(0, 1000, (args.batch, ), generator=g)

    def step(i, arch):
        if i == 0:
            loss = F.cross_entropy(heads[0](one(x, arch)), y)
        else:
            with torch.no_grad():
                code = k.code(arch)
            loss = F.cross_entropy(heads[1](k(x, arch, code)), y)
        loss.backward()
        opts[i].step()
        opts[i].zero_grad(set_to_none=True)
    times = ([], [])
    for n, arch in enumerate(paths):
        for i in (0, 1) if n % 2 else (1, 0):
            t = time.perf_counter()
            step(i, arch)
            if n:  # the first path is the warm-up
                times[i].append(time.perf_counter() - t)
    return dict(oneshot_s=statistics.median(times[0]),
                kshot_s=statistics.median(times[1]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--k', type=int, default=8)
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--steps', type=int, default=4)
    p.add_argument('--depth', type=int, default=6)
    p.add_argument('--paths', type=int, default=16,
                   help='m of the simplex step')
    p.add_argument('--modes', nargs='+', default=list(MODES),
                   choices=MODES)
    p.add_argument('--no-interleaved', action='store_true',
                   help='skip the interleaved (same process) timing')
    p.add_argument('--worker', choices=MODES + ('interleaved', ),
                   help=argparse.SUPPRESS)
    add_json_arg(p)
    args = p.parse_args()
    if args.worker == 'interleaved':
        print(json.dumps(interleaved_times(args)))
        return
    if args.worker:
        print(json.dumps(worker(args)))
        return
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(
                   [ROOT] + os.environ.get('PYTHONPATH', '').split(
                       os.pathsep)).rstrip(os.pathsep),
               MALLOC_MMAP_THRESHOLD_='65536', MALLOC_TRIM_THRESHOLD_='0')
    rows = {}
    modes = list(args.modes) + ([] if args.no_interleaved
                                else ['interleaved'])
    for mode in modes:
        out = subprocess.run(
            [sys.executable, __file__, '--worker', mode, '--k', str(args.k),
             '--size', str(args.size), '--batch', str(args.batch),
             '--steps', str(args.steps), '--depth', str(args.depth),
             '--paths', str(args.paths)],
            env=env, capture_output=True, text=True)
        if out.returncode:
            sys.exit(out.stderr[-3000:])
        rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f'Cream mbconv space (max depth {args.depth}), {args.size} px, '
          f'batch {args.batch}, K={args.k}, {args.steps} timed steps, '
          f'1 thread')
    cols = ('params_MB', 'state_MB', 'step_peak_MB', 'saved_MB', 'step_s')
    fig = Figures()
    names = dict(params_MB='parameters', state_MB='state after a step',
                 step_peak_MB='step peak memory',
                 saved_MB='saved for backward', step_s='step time')
    print(f"{'mode':14s}" + ''.join(f'{c:>14s}' for c in cols))
    for mode, r in rows.items():
        if mode != 'interleaved':
            print(f'{mode:14s}' + ''.join(f'{r[c]:14.2f}' for c in cols))
            for c in cols:
                unit = c.rsplit('_', 1)[1]
                fig.add(f'{mode}_{c}', r[c], f'{mode}: {names[c]}', unit)
    if 'oneshot' in rows and 'kshot' in rows:
        one, k = rows['oneshot'], rows['kshot']
        print('K-shot / one-shot: ' + ', '.join(
            f'{c} {k[c] / one[c]:.3f}x' for c in cols))
        total = ((k['state_MB'] + k['step_peak_MB']) /
                 (one['state_MB'] + one['step_peak_MB']))
        print(f'K-shot / one-shot, state + step peak: {total:.3f}x')
        for c in cols:
            fig.add(f'ratio_{c.rsplit("_", 1)[0]}', k[c] / one[c],
                    f'K-shot / one-shot: {names[c]}', 'x')
        fig.add('ratio_state_plus_peak', total,
                'K-shot / one-shot: state + step peak', 'x')
    if 'interleaved' in rows:
        t = rows['interleaved']
        print(f"interleaved in one process: one-shot {t['oneshot_s']:.2f} s,"
              f" K-shot {t['kshot_s']:.2f} s per step, "
              f"{t['kshot_s'] / t['oneshot_s']:.3f}x")
        fig.add('ratio_step_interleaved', t['kshot_s'] / t['oneshot_s'],
                'K-shot / one-shot step time, alternated in one process',
                'x')
    print(json.dumps(rows))
    fig.info.update(k=args.k, size=args.size, batch=args.batch,
                    steps=args.steps, depth=args.depth)
    fig.dump(args.json)


if __name__ == '__main__':
    main()
