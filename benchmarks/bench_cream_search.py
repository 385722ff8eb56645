"""Cost of Cream over a whole search: Cream steps vs SPOS steps, amortised.

Builds a search config's model twice from the same seed -- as configured
(Cream: meta matching, KD, board scoring on held-out images, meta updates)
and as its SPOS twin (``matching='none'``, ``use_board=False``) -- and runs
both over the config's whole schedule on the same batches, one step of each
in turn (the order alternating), with the config's learning-rate schedules.
Prints the ratio of their summed ``train_step`` times over the whole search
and after the warm-up, how often the held-out subset was evaluated and the
meta network updated, and what the Cream steps' extra time went to, in SPOS
steps.

    OMP_NUM_THREADS=1 python benchmarks/bench_cream_search.py \
        configs/search/tiny_cream_embedded.py \
        [--cfg-options model.scoring.screen=entry] [--iters 600] [--json PATH]

Unlike ``bench_cream_step.py`` (a window of steps right after the start,
when every sampled path can still enter the board) this includes the
search's later phase, where the board is strong: the entry screen
(``scoring.screen='entry'``) then spares most held-out evaluations, and
early stop (``scoring.early_stop``) ends a confirmation once the path
cannot enter. The settings of the headline runs (the paper's tau, matching
images and held-out-to-batch ratio) are in ``benchmarks/run_all.py``;
measured figures in ``docs/benchmarks.md``.
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
from figures import Figures, add_json_arg  # noqa: E402
from search_timing import PARTS, Clock, build_from_config  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--iters', type=int, help='default: the config\'s')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_json_arg(p)
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
    fig = Figures()
    screen = cream.score_cfg['screen']
    n_val = cream._val_total() if val else 0
    print(f'{args.config}: {iters} iterations (warm-up {warm}), '
          f'{torch.get_num_threads()} thread(s); scoring on '
          f'{cream.score_cfg["on"]!r}, screen {screen!r}, early stop '
          f'{cream.score_cfg["early_stop"]}, {n_val} held-out images, batch '
          f'{cfg.train_dataloader.batch_size}, tau '
          f'{cream.meta_cfg["interval"]}, {cream.meta_cfg["match_images"]} '
          'matching images')
    print(f'held-out evaluations: {int(cream.val_scored)} (board init and '
          f'confirmations), meta updates: {int(cream.meta_steps)}, '
          f'distilled steps: {int(cream.distill_steps)}')
    for name, t in (('SPOS ', s), ('Cream', c)):
        print(f'{name} search: {sum(t):7.1f} s '
              f'({sum(t) / iters * 1e3:.0f} ms/step)')
    print(f'ratio over the whole search: {sum(c) / sum(s):.2f}x')
    fig.add('ratio', sum(c) / sum(s), 'Cream / SPOS over the whole search',
            'x')
    if 0 < warm < iters:
        half = (warm + iters) // 2
        after = sum(c[warm:]) / sum(s[warm:])
        first = sum(c[warm:half]) / sum(s[warm:half])
        second = sum(c[half:]) / sum(s[half:])
        print(f'ratio after the warm-up:     {after:.2f}x')
        print(f'  first half after warm-up:  {first:.2f}x, second half: '
              f'{second:.2f}x')
        fig.add('ratio_after_warmup', after,
                'Cream / SPOS after the warm-up', 'x')
        fig.add('ratio_first_half', first,
                'Cream / SPOS, first half after the warm-up', 'x')
        fig.add('ratio_second_half', second,
                'Cream / SPOS, second half after the warm-up', 'x')
    fig.add('spos_ms', sum(s) / iters * 1e3, 'SPOS step', 'ms')
    fig.add('cream_ms', sum(c) / iters * 1e3, 'Cream step (amortised)',
            'ms')
    print('where the Cream steps\' extra time went, per step over the '
          'search (in SPOS steps):')
    spos_step = sum(s) / iters
    for name, v in clock.total.items():
        print(f'  {PARTS[name]:32s} {v / iters * 1e3:7.1f} ms '
              f'({v / iters / spos_step:.2f})')
        fig.add(f'{name}_spos', v / iters / spos_step,
                f'{PARTS[name]} per step', 'SPOS steps')
    fig.add('val_scored', int(cream.val_scored),
            'held-out evaluations (board init and confirmations)')
    fig.add('meta_steps', int(cream.meta_steps), 'meta updates (Eq. 6)')
    fig.add('distill_steps', int(cream.distill_steps), 'distilled steps')
    board = [r['score'] for r in cream.board_table()]
    print('board:', *(f'{x:.1f}' for x in board))
    fig.info.update(iters=iters, warmup=warm, held_out_images=n_val,
                    batch=cfg.train_dataloader.batch_size, screen=screen,
                    board=board)
    fig.dump(args.json)

if __name__ == '__main__':
    main()
