"""Cost of Cream over a whole search: Cream steps vs SPOS steps, amortised.

Builds a search config's model twice from the same seed -- as configured
(Cream: meta matching, KD, board scoring on held-out images, meta updates)
and as its SPOS twin (``matching='none'``, ``use_board=False``) -- and runs
both over the config's whole schedule on the same batches, one step of each
in turn (the order alternating), with the config's learning-rate schedules.
Prints the ratio of their summed ``train_step`` times over the whole search
and after the warm-up, and how often the held-out subset was evaluated
(target of the search issue: <= 1.5x).

    OMP_NUM_THREADS=1 python benchmarks/bench_cream_search.py \\
        configs/search/tiny_cream_embedded.py \\
        [--cfg-options model.scoring.screen=entry] [--iters 600]

Unlike ``bench_cream_step.py`` (a window of steps right after the start,
when every sampled path can still enter the board) this includes the
search's later phase, where the board is strong: the entry screen
(``scoring.screen='entry'``) then spares most held-out evaluations. Also
prints what the Cream steps' extra time went to, in SPOS steps.

Measured (tiny search, one thread): with the paper's tau=200, entry screen
and 4 matching images 1.42x over the search, 1.50x after the warm-up; with
the tiny config's own tau=20 (Eq. 6 ten times as often), sigma screen and
8 matching images 1.56-1.59x / 1.67-1.71x.
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import cream_mm  # noqa: E402,F401
from search_timing import PARTS, Clock, build_from_config  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--iters', type=int, help='default: the config\'s')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    iters = args.iters or cfg.train_cfg.max_iters
    warm = int(cfg.model.get('warmup', {}).get('iters', 0))
    val = (list(Runner.build_dataloader(cfg.search_val_dataloader, seed=0))
           if cfg.get('search_val_dataloader') else None)
    cream, c_opt, c_sched = build_from_config(cfg, False, val)
    clock = Clock(cream, tuple(PARTS))
    spos, s_opt, s_sched = build_from_config(cfg, True, val)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    clock.on = True
    times = {'cream': [], 'spos': []}
    it = iter(loader)
    for step in range(iters):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        order = [('cream', cream, c_opt, c_sched),
                 ('spos', spos, s_opt, s_sched)]
        if step % 2:  # alternate which model runs first
            order.reverse()
        for name, model, opt, scheds in order:
            t0 = time.perf_counter()
            model.train_step(batch, opt)
            times[name].append(time.perf_counter() - t0)
            for s in scheds:
                s.step()
    c, s = times['cream'], times['spos']
    screen = cream.score_cfg['screen']
    print(f'{args.config}: {iters} iterations (warm-up {warm}), '
          f'{torch.get_num_threads()} thread(s); scoring on '
          f'{cream.score_cfg["on"]!r}, screen {screen!r}, '
          f'{cream._val_total() if val else 0} held-out images')
    print(f'held-out evaluations: {int(cream.val_scored)} (board init and '
          f'confirmations), meta updates: {int(cream.meta_steps)}, '
          f'distilled steps: {int(cream.distill_steps)}')
    for name, t in (('SPOS ', s), ('Cream', c)):
        print(f'{name} search: {sum(t):7.1f} s '
              f'({sum(t) / iters * 1e3:.0f} ms/step)')
    print(f'ratio over the whole search: {sum(c) / sum(s):.2f}x '
          f'(target <= 1.5x)')
    if 0 < warm < iters:
        print(f'ratio after the warm-up:     '
              f'{sum(c[warm:]) / sum(s[warm:]):.2f}x')
        half = (warm + iters) // 2
        print(f'  first half after warm-up:  '
              f'{sum(c[warm:half]) / sum(s[warm:half]):.2f}x, second half: '
              f'{sum(c[half:]) / sum(s[half:]):.2f}x')
    print('where the Cream steps\' extra time went, per step over the '
          'search (in SPOS steps):')
    spos_step = sum(s) / iters
    for name, v in clock.total.items():
        print(f'  {PARTS[name]:32s} {v / iters * 1e3:7.1f} ms '
              f'({v / iters / spos_step:.2f})')
    print('board:', *(f'{r["score"]:.1f}' for r in cream.board_table()))


if __name__ == '__main__':
    main()
