"""Cost of a Cream step vs a plain SPOS step on the same paths.

Both models share the same supernet initialisation, data and sampled paths
(same sampler seed); the Cream step does meta matching (Eq. 4 on
``match_images`` images), KD from the teacher (Eq. 5), board scoring
(Eq. 3; held-out subset with the training-batch screen, or the training
batch) and the meta update (Eq. 6) every tau distilled steps. After
``--warm`` untimed steps, the two models take one step each in turn on the
same batch (the order alternating, so drift of a shared machine hits both
alike) for ``--steps - --warm`` timed steps; the default window is tau = 200
steps, so it holds exactly one meta update and the held-out confirmations
of 200 sampled paths. Prints both per-step times, their ratio, where the
Cream step's extra time goes (matching, teacher, board scoring, meta
update), and how many held-out confirmations and meta updates fell inside
the timed window. Measured figures: ``docs/benchmarks.md``
(``benchmarks/run_all.py``); the whole-search amortised ratio is
``bench_cream_search.py``'s.

    OMP_NUM_THREADS=1 python benchmarks/bench_cream_step.py --data embedded \
        [--steps 230] [--warm 30] [--batch 64] [--match 4] \
        [--score-on val|train_batch] [--no-channels-last] [--json PATH]

``--config CONFIG`` instead times ``train_step`` of a search config's own
model, optimisers and data outside the runner (per-step means of the
warm-up phase and of the Cream phase), to compare with the ``time`` that
``tools/train.py CONFIG`` logs for the same iterations::

    OMP_NUM_THREADS=1 python benchmarks/bench_cream_step.py \
        --config configs/search/tiny_cream_embedded.py --steps 60 --warmup 30
    OMP_NUM_THREADS=1 python tools/train.py configs/search/tiny_cream_embedded.py \
        --cfg-options train_cfg.max_iters=60 model.warmup.iters=30 \
        default_hooks.logger.interval=10
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402

from cream_mm.search import (CreamOptimWrapperConstructor,  # noqa: E402
                             CreamSearch)
from figures import Figures, add_json_arg  # noqa: E402
from search_timing import PARTS, Clock, build_from_config  # noqa: E402


def build(matching, use_board, args, **kw):
    torch.manual_seed(0)
    model = CreamSearch(
        supernet=dict(type='CreamSupernet', space=dict(
            name='mbconv', max_depths=args.depth, input_size=args.size)),
        head=dict(type='CreamClsHead', num_classes=10, dropout=0.),
        matching=matching, use_board=use_board,
        board=dict(num_paths=args.k),
        meta=dict(interval=args.tau, match_images=args.match),
        scoring=dict(on=args.score_on, screen=True, screen_sigma=1.),
        sampler=dict(seed=0), channels_last=args.channels_last, **kw)
    parts = dict(supernet=dict(optimizer=dict(type='SGD', lr=0.05,
                                              momentum=0.9)),
                 meta=dict(optimizer=dict(type='SGD', lr=1e-3)))
    return model, CreamOptimWrapperConstructor(parts)(model)


def batches(n, bs, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [dict(inputs=[torch.randint(0, 255, (3, size, size),
                                       dtype=torch.uint8, generator=g)
                         for _ in range(bs)],
                 data_samples=[DataSample().set_gt_label(
                     torch.randint(0, 10, (), generator=g))
                     for _ in range(bs)]) for _ in range(n)]


def embedded_batches(n, bs, size, split, seed=0):
    """``n`` batches of the embedded classification data (Fashion-MNIST, or
    MNIST-5k) resized to ``size``: real images, so the board's screen and
    early stop behave as in a search."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    import cream_mm  # noqa: F401  (registers the dataset)
    init_default_scope('mmpretrain')
    loader = Runner.build_dataloader(dict(
        batch_size=bs, num_workers=0,
        dataset=dict(type='EmbeddedClsDataset', name='auto', split=split,
                     pipeline=[dict(type='Resize', scale=(size, size)),
                               dict(type='PackInputs')]),
        sampler=dict(type='DefaultSampler', shuffle=True)), seed=seed)
    out = []
    while len(out) < n:
        for b in loader:
            out.append(b)
            if len(out) == n:
                break
    return out


def interleaved(models, data, warm, clock):
    """Per-step seconds of each ``(name, model, optim)`` over
    ``data[warm:]``, one step of each in turn (order alternating); the
    ``clock`` runs in the timed window only. Returns ``(times, counts)``:
    counts of held-out evaluations and meta updates of the models with a
    board inside the window."""
    def counts():
        return {n: (int(m.val_scored), int(m.meta_steps))
                for n, m, _ in models}
    times = {n: 0. for n, _, _ in models}
    for step, b in enumerate(data):
        if step == warm:
            clock.on, before = True, counts()
        order = models if step % 2 == 0 else models[::-1]
        for name, model, optim in order:
            t0 = time.perf_counter()
            model.train_step(b, optim)
            if step >= warm:
                times[name] += time.perf_counter() - t0
    clock.on = False
    after, n = counts(), len(data) - warm
    window = {k: (after[k][0] - before[k][0], after[k][1] - before[k][1])
              for k in after}
    return {k: v / n for k, v in times.items()}, window


def outside_runner(args):
    """train_step of a config's model on its data, without the Runner."""
    import statistics

    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    cfg.model.warmup = dict(iters=args.warmup)
    val = (list(Runner.build_dataloader(cfg.search_val_dataloader, seed=0))
           if cfg.get('search_val_dataloader') else None)
    model, optim, _ = build_from_config(cfg, False, val)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    it, times = iter(loader), []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        model.train_step(next(it), optim)
        times.append(time.perf_counter() - t0)
    warm, cream = times[5:args.warmup], times[args.warmup:]
    print(f'{args.config}: train_step outside the runner, '
          f'{torch.get_num_threads()} thread(s)')
    if warm:
        print(f'  warm-up steps (SPOS):  {statistics.mean(warm):.3f} s')
    if cream:
        print(f'  Cream steps:           {statistics.mean(cream):.3f} s '
              f'({int(model.val_scored)} val evaluations, '
              f'{int(model.meta_steps)} meta updates)')


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--config', help='time this search config outside the '
                   'runner instead (see module docstring)')
    p.add_argument('--warmup', type=int, default=30,
                   help='--config: warm-up iterations of the model')
    p.add_argument('--steps', type=int, default=230,
                   help='steps in all, the first --warm not timed')
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--size', type=int, default=64)
    p.add_argument('--depth', type=int, default=4)
    p.add_argument('--k', type=int, default=10)
    p.add_argument('--tau', type=int, default=200)
    p.add_argument('--match', type=int, default=4,
                   help='meta.match_images (4: the model default)')
    p.add_argument('--val-images', type=int, default=512)
    p.add_argument('--score-on', default='val')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--data', choices=('random', 'embedded'), default='random',
                   help='random uint8 images and labels, or the embedded '
                   'classification data (real accuracies: the screen and '
                   'early stop act as in a search)')
    p.add_argument('--channels-last', action=argparse.BooleanOptionalAction,
                   default=True,
                   help='NHWC weights and inputs for both models (default, '
                   'as the CPU search configs set; --no-channels-last for '
                   'NCHW)')
    p.add_argument('--warm', type=int, default=30,
                   help='steps not timed: one-off board scoring at start')
    add_json_arg(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.config:
        return outside_runner(args)
    if not 0 <= args.warm < args.steps:
        p.error(f'--warm must be in [0, --steps); got {args.warm}')
    if args.data == 'embedded':
        data = embedded_batches(args.steps, args.batch, args.size,
                                'search_train')
        val = embedded_batches(max(1, args.val_images // 128), 128,
                               args.size, 'search_val', seed=1)
    else:
        data = batches(args.steps, args.batch, args.size)
        val = batches(max(1, args.val_images // 128), 128, args.size, seed=1)
    spos, spos_opt = build('none', False, args)
    cream, cream_opt = build('meta', True, args)
    cream.attach_search_val(val)
    clock = Clock(cream, tuple(PARTS))
    t, window = interleaved([('spos', spos, spos_opt),
                             ('cream', cream, cream_opt)], data, args.warm,
                            clock)
    t_spos, t_cream = t['spos'], t['cream']
    val_in, meta_in = window['cream']
    n = args.steps - args.warm
    print(f'{n} timed steps after {args.warm}, batch {args.batch} at '
          f'{args.size}px ({"NHWC" if args.channels_last else "NCHW"}), K='
          f'{args.k}, tau={args.tau}, match_images={args.match}, scoring '
          f'{args.score_on} ({args.val_images} images, screen 1 sigma)')
    print(f'held-out evaluations: {int(cream.val_scored)} ({val_in} in the '
          f'timed steps), meta updates: {int(cream.meta_steps)} ({meta_in} '
          f'in the timed steps)')
    print(f'SPOS step:  {t_spos * 1e3:8.1f} ms')
    print(f'Cream step: {t_cream * 1e3:8.1f} ms (amortised)')
    for k, v in clock.total.items():
        print(f'  {PARTS[k]:32s} {v / n * 1e3:8.1f} ms/step')
    print(f'ratio Cream / SPOS: {t_cream / t_spos:.2f}x  (target <= 1.5x)')
    fig = Figures()
    fig.add('ratio', t_cream / t_spos, 'Cream / SPOS step', 'x')
    fig.add('spos_ms', t_spos * 1e3, 'SPOS step', 'ms')
    fig.add('cream_ms', t_cream * 1e3, 'Cream step (amortised)', 'ms')
    for k, v in clock.total.items():
        fig.add(f'{k}_ms', v / n * 1e3, PARTS[k] + ' per step', 'ms')
    fig.add('val_in_window', val_in,
            'held-out evaluations in the timed steps')
    fig.add('meta_in_window', meta_in, 'meta updates in the timed steps')
    fig.info.update(timed_steps=n, val_total=int(cream.val_scored),
                    meta_total=int(cream.meta_steps))
    fig.dump(args.json)


if __name__ == '__main__':
    main()
