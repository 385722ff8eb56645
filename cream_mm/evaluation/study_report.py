"""The Tab. 1 study's report from its unit cache: ``study.json``,
``table1.md`` (the paper's Tab. 1 layout, the paper's numbers beside
ours) and PNG plots.

Statistics (docs/study.md):

* Kendall tau per (row, seed): inherited top-1 of the N paths against
  their stand-alone top-1 (mean of the stand-alone seeds); 95 % interval
  by the percentile bootstrap over paths. Per row: the mean over seeds,
  its bootstrap interval (paths resampled jointly for all seeds) and the
  spread (standard deviation, min-max) over seeds;
* the stand-alone noise ceiling: tau between the two stand-alone runs of
  the same paths, with its bootstrap interval;
* hypernet top-1: the mean inherited top-1 over the N paths; per row the
  mean over seeds with a Student-t 95 % interval over seeds;
* retrained top-1: each seed's final architecture trained from scratch
  with the retrain seeds (``test`` set); per row the mean over seeds with
  a t interval over seeds (of per-seed means). The random baseline:
  stand-alone paths within ``random_band`` FLOPs of each final
  architecture (at least ``random_min``, else the nearest), ``test`` top-1
  of both stand-alone runs, averaged like the finals;
* differences against the baseline row (``baseline_row``, SPOS): delta
  tau with a paired bootstrap over paths (the same resampled paths for
  both rows) and the share of resamples with delta <= 0; delta retrained
  top-1 with a Welch t interval over search seeds; and per row the
  search-minus-random gap (per seed: retrained top-1 minus its random
  same-FLOPs baseline) with a t interval over seeds.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .study import find_row, inherited_key, standalone_key, supernet_key
from .study_cache import atomic_write_json

T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447,
       7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def _tau(x, y) -> float:
    from .ranking import kendall_tau
    if len(set(x)) < 2 or len(set(y)) < 2:
        return float('nan')
    return kendall_tau(x, y)[0]


def bootstrap_tau(xs: list, y, n: int, seed: int = 0) -> dict:
    """Mean over ``xs`` (one inherited list per seed) of tau(x, y), with a
    percentile bootstrap 95 % interval over paths (the same resampled
    paths for every x)."""
    y = np.asarray(y, float)
    xs = [np.asarray(x, float) for x in xs]
    point = float(np.mean([_tau(x, y) for x in xs]))
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(int(n)):
        idx = rng.integers(0, len(y), len(y))
        v = np.mean([_tau(x[idx], y[idx]) for x in xs])
        if not math.isnan(v):
            reps.append(v)
    lo, hi = (np.percentile(reps, [2.5, 97.5]).tolist() if reps
              else [float('nan')] * 2)
    return dict(tau=point, ci95=[lo, hi], bootstrap=len(reps))


def paired_tau_difference(xs_a: list, xs_b: list, y, n: int,
                          seed: int = 0) -> dict:
    """tau(a) - tau(b), each the mean over its seeds' inherited lists
    against the same stand-alone ``y``; percentile bootstrap over paths,
    the same resampled paths for both rows (a paired test)."""
    y = np.asarray(y, float)
    xa = [np.asarray(x, float) for x in xs_a]
    xb = [np.asarray(x, float) for x in xs_b]

    def diff(idx):
        return (np.mean([_tau(x[idx], y[idx]) for x in xa])
                - np.mean([_tau(x[idx], y[idx]) for x in xb]))
    point = float(diff(np.arange(len(y))))
    rng = np.random.default_rng(seed)
    reps = [v for v in (diff(rng.integers(0, len(y), len(y)))
                        for _ in range(int(n))) if not math.isnan(v)]
    lo, hi = (np.percentile(reps, [2.5, 97.5]).tolist() if reps
              else [float('nan')] * 2)
    share = float(np.mean(np.asarray(reps) <= 0)) if reps else float('nan')
    return dict(diff=point, ci95=[lo, hi], share_le_0=share,
                bootstrap=len(reps))


def welch_difference(a: list, b: list) -> dict:
    """mean(a) - mean(b) with a Welch t 95 % interval (None below 2 values
    on either side)."""
    a = np.asarray([x for x in a if x is not None], float)
    b = np.asarray([x for x in b if x is not None], float)
    if len(a) == 0 or len(b) == 0:
        return dict(diff=None, ci95=None)
    d = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return dict(diff=d, ci95=None)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = float(math.sqrt(va + vb))
    if se == 0:
        return dict(diff=d, ci95=[d, d])
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = T95.get(max(int(df), 1), 1.96) * se
    return dict(diff=d, ci95=[d - half, d + half], df=float(df))


def t_interval(values: list) -> dict:
    """Mean and Student-t 95 % interval (None for fewer than 2 values)."""
    v = np.asarray([x for x in values if x is not None], float)
    if len(v) == 0:
        return dict(mean=None, ci95=None, n=0)
    mean = float(v.mean())
    if len(v) < 2:
        return dict(mean=mean, ci95=None, n=1)
    half = T95.get(len(v) - 1, 1.96) * float(v.std(ddof=1)) / len(v) ** .5
    return dict(mean=mean, ci95=[mean - half, mean + half], n=len(v))


# ------------------------------------------------------------- telemetry
def telemetry_summary(path) -> dict:
    """What a search's telemetry file says (docs/study.md, 'why')."""
    from ..search.telemetry import read_telemetry
    tel = read_telemetry(path)
    steps, probes = tel['step'], tel['probe']
    taught = [s for s in steps if s.get('teacher')]
    rho = [s['rho'] for s in taught if s.get('rho') is not None]
    ratio = [s['rho'] * s['kd'] / s['ce'] for s in taught
             if s.get('kd') is not None and s.get('ce')]
    best = [s['teacher_is_best'] for s in taught
            if s.get('teacher_is_best') is not None]
    agree = [p['agreement'] for p in probes if p.get('agreement') is not None]
    curve = [dict(iter=p['iter'],
                  board=float(np.mean(p['board_top1']))
                  if p['board_top1'] else None,
                  random=float(np.mean(p['random_top1']))
                  if p['random_top1'] else None) for p in probes]
    q = (np.percentile(rho, [5, 25, 50, 75, 95]).tolist() if rho else None)
    return dict(
        steps=len(steps), distill_steps=len(taught),
        rho=dict(mean=float(np.mean(rho)) if rho else None,
                 std=float(np.std(rho)) if rho else None,
                 quantiles_5_25_50_75_95=q,
                 values=rho[::max(len(rho) // 500, 1)]),
        teacher_is_board_best=(float(np.mean(best)) if best else None),
        kd_over_ce=(float(np.mean(ratio)) if ratio else None),
        agreement=(float(np.mean(agree)) if agree else None),
        board_vs_random=curve)


# ---------------------------------------------------------------- gather
def _standalone(study, cache, arch, seeds) -> list:
    return [cache.get('standalone', standalone_key(study, arch, s))
            for s in seeds]


def random_baseline(study, sa: dict, flops: float) -> dict:
    """Stand-alone paths of the same FLOPs band as ``flops``."""
    rows = [(a, r) for a, r in sa.items() if all(x is not None for x in r)]
    band = float(study.random_band)
    near = [(a, r) for a, r in rows if abs(r[0]['flops'] - flops) <= band]
    if len(near) < int(study.random_min):
        near = sorted(rows, key=lambda ar: abs(ar[1][0]['flops'] - flops))[
            :int(study.random_min)]
    top1 = [float(np.mean([x['top1_test'] for x in r])) for _, r in near]
    return dict(archs=[a for a, _ in near], top1=top1,
                mean=float(np.mean(top1)) if top1 else None)


def gather(study, cache, rows: list[dict]) -> dict:
    paths = list(study.paths)
    sa_seeds = list(study.standalone['seeds'])
    sa = {a: _standalone(study, cache, a, sa_seeds) for a in paths}
    complete = [i for i, a in enumerate(paths)
                if all(r is not None for r in sa[a])]
    truth = [float(np.mean([r['top1_rank'] for r in sa[paths[i]]]))
             for i in complete]
    ceiling = None
    if len(sa_seeds) >= 2 and len(complete) >= 3:
        a = [sa[paths[i]][0]['top1_rank'] for i in complete]
        b = [sa[paths[i]][1]['top1_rank'] for i in complete]
        ceiling = dict(bootstrap_tau([a], b, study.bootstrap),
                       paths=len(complete))
    out_rows, inherited_by_row = [], {}
    for row in rows:
        seeds_out, inh_lists = [], []
        inherited_by_row[str(row['id'])] = inh_lists
        for seed in study.seeds:
            sup = cache.get('supernet', supernet_key(study, row, seed))
            inh = cache.get('inherited', inherited_key(study, row, seed))
            entry = dict(seed=seed, supernet=None)
            if sup is None:
                seeds_out.append(entry)
                continue
            entry.update(final_arch=sup['final_arch'],
                         final_mflops=sup['final_flops'] / 1e6,
                         supernet_seconds=sup['seconds'],
                         board=sup.get('board', []), supernet='done')
            if inh is not None:
                x = [inh['top1'][i] for i in complete]
                inh_lists.append(x)
                entry.update(inherited=inh['top1'],
                             hypernet_top1=float(np.mean(inh['top1'])),
                             inherited_seconds=inh['seconds'],
                             **({'kendall': bootstrap_tau(
                                 [x], truth, study.bootstrap)}
                                if len(complete) >= 3 else {}))
            rt = [r for r in _standalone(study, cache, sup['final_arch'],
                                         study.retrain['seeds'])
                  if r is not None]
            if rt:
                entry.update(retrain_top1=[r['top1_test'] for r in rt],
                             retrain_mean=float(np.mean(
                                 [r['top1_test'] for r in rt])),
                             retrain_seconds=float(sum(
                                 r['train_seconds'] for r in rt)))
            entry['random'] = random_baseline(study, sa, sup['final_flops'])
            tel = Path(sup['telemetry'])
            if tel.is_file():
                entry['telemetry'] = telemetry_summary(tel)
            seeds_out.append(entry)
        taus = [e['kendall']['tau'] for e in seeds_out if 'kendall' in e]
        summary = dict(
            kendall=(dict(bootstrap_tau(inh_lists, truth, study.bootstrap),
                          std=float(np.std(taus, ddof=1))
                          if len(taus) > 1 else None,
                          min=min(taus), max=max(taus), per_seed=taus)
                     if inh_lists and len(complete) >= 3 else None),
            hypernet_top1=t_interval([e.get('hypernet_top1')
                                      for e in seeds_out]),
            retrain_top1=t_interval([e.get('retrain_mean')
                                     for e in seeds_out]),
            random_top1=t_interval([e['random']['mean'] for e in seeds_out
                                    if e.get('random')]),
            final_mflops=[e.get('final_mflops') for e in seeds_out],
            wall_seconds=dict(
                supernet=sum(e.get('supernet_seconds', 0)
                             for e in seeds_out),
                inherited=sum(e.get('inherited_seconds', 0)
                              for e in seeds_out),
                retrain=sum(e.get('retrain_seconds', 0)
                            for e in seeds_out)))
        out_rows.append(dict(id=row['id'], name=row['name'],
                             paper=row.get('paper'), seeds=seeds_out,
                             compare_to=row.get('compare_to'), **summary))
    sa_seconds = sum(r['train_seconds'] for a in paths for r in sa[a]
                     if r is not None)
    return dict(paths=paths, complete_paths=len(complete),
                standalone=dict(seeds=sa_seeds, seconds=sa_seconds,
                                top1_rank=[[r['top1_rank'] if r else None
                                            for r in sa[a]] for a in paths],
                                top1_test=[[r['top1_test'] if r else None
                                            for r in sa[a]] for a in paths],
                                mflops=[sa[a][0]['flops'] / 1e6
                                        if sa[a][0] else None
                                        for a in paths]),
                noise_ceiling=ceiling, rows=out_rows,
                comparisons=screen_comparisons(out_rows),
                differences=differences(study, out_rows, inherited_by_row,
                                        truth, len(complete)))


def differences(study, rows: list[dict], inherited: dict, truth: list,
                complete: int) -> list[dict]:
    """Every row against the baseline row (``study.baseline_row``, default
    1, SPOS): paired delta tau, delta retrained top-1, and the row's own
    search-minus-random gap."""
    base_id = str(study.get('baseline_row', 1))
    base = next((r for r in rows if str(r['id']) == base_id), None)
    out = []
    for r in rows:
        gaps = [e['retrain_mean'] - e['random']['mean'] for e in r['seeds']
                if e.get('retrain_mean') is not None and e.get('random')
                and e['random'].get('mean') is not None]
        entry = dict(row=r['id'], against=base_id if base else None,
                     search_minus_random=t_interval(gaps))
        if base is not None and r is not base:
            xa, xb = inherited[str(r['id'])], inherited[base_id]
            if xa and xb and complete >= 3:
                entry['delta_tau'] = paired_tau_difference(
                    xa, xb, truth, study.bootstrap)
            entry['delta_retrain'] = welch_difference(
                [e.get('retrain_mean') for e in r['seeds']],
                [e.get('retrain_mean') for e in base['seeds']])
        out.append(entry)
    return out


def screen_comparisons(rows: list[dict]) -> list[dict]:
    """Rows with ``compare_to`` (e.g. the sigma screen against row 5), per
    seed: board overlap, same final arch, retrained top-1 of both."""
    by_id = {str(r['id']): r for r in rows}
    out = []
    for r in rows:
        other = by_id.get(str(r.get('compare_to')))
        if other is None:
            continue
        for a, b in zip(r['seeds'], other['seeds']):
            if not (a.get('supernet') and b.get('supernet')):
                continue
            ba = {x['arch'] for x in a.get('board', [])}
            bb = {x['arch'] for x in b.get('board', [])}
            out.append(dict(row=r['id'], against=other['id'], seed=a['seed'],
                            board_overlap=len(ba & bb),
                            board_size=max(len(ba), len(bb)),
                            same_final=a['final_arch'] == b['final_arch'],
                            retrain=[a.get('retrain_mean'),
                                     b.get('retrain_mean')]))
    return out


# ---------------------------------------------------------------- output
def _ci(d, fmt='{:.2f}') -> str:
    if not d or d.get('mean') is None:
        return 'n/a'
    if not d.get('ci95'):
        return fmt.format(d['mean'])
    return (fmt.format(d['mean']) + ' [' + fmt.format(d['ci95'][0]) + ', '
            + fmt.format(d['ci95'][1]) + ']')


def markdown(data: dict, study) -> str:
    head = ('| # | Row | Evolution | Priority path | Match | Kendall tau '
            '(ours: mean [95 % CI], sd over seeds) | paper | Hypernet top-1 '
            '(ours) | paper | Retrained top-1 (ours) | random, same FLOPs '
            '| paper | FLOPs (ours, M) | paper (M) | wall s (supernet / '
            'inherited / retrain) |')
    lines = [head, '|' + '---|' * 15]
    for r in data['rows']:
        k = r['kendall']
        tau = ('n/a' if not k else
               f"{k['tau']:.2f} [{k['ci95'][0]:.2f}, {k['ci95'][1]:.2f}]"
               + (f", sd {k['std']:.2f}" if k.get('std') is not None
                  else ''))
        row = find_row(study, r['id'])
        p = r.get('paper') or {}
        fl = [f for f in r['final_mflops'] if f is not None]
        w = r['wall_seconds']
        lines.append(
            f"| {r['id']} | {r['name']} | "
            f"{'yes' if row['search'] == 'evolution' else ''} | "
            f"{'yes' if row['board'] else ''} | "
            f"{row['matching'] if row['distill'] else ''} | {tau} | "
            f"{p.get('tau', '')} | {_ci(r['hypernet_top1'])} | "
            f"{p.get('hyper', '')} | {_ci(r['retrain_top1'])} | "
            f"{_ci(r['random_top1'])} | {p.get('top1', '')} | "
            f"{', '.join(f'{f:.2f}' for f in fl) or 'n/a'} | "
            f"{p.get('mflops', '')} | {w['supernet']:.0f} / "
            f"{w['inherited']:.0f} / {w['retrain']:.0f} |")
    c = data['noise_ceiling']
    lines.append('')
    lines.append(
        f"Stand-alone noise ceiling (tau between two stand-alone runs of the "
        f"{data['complete_paths']} paths): " +
        (f"{c['tau']:.2f} [{c['ci95'][0]:.2f}, {c['ci95'][1]:.2f}]" if c
         else 'n/a') +
        f"; stand-alone stage {data['standalone']['seconds']:.0f} s of "
        'training. Kendall tau: bootstrap over paths; top-1: t interval '
        'over search seeds; docs/study.md.')
    diffs = data.get('differences') or []
    if diffs:
        lines += ['', '| # | delta tau vs #' + str(diffs[0]['against'])
                  + ' [95 % CI] (share of resamples <= 0) | delta retrained '
                  'top-1 vs #' + str(diffs[0]['against']) + ' [95 % CI] | '
                  'retrained minus random, same FLOPs [95 % CI] |',
                  '|---|---|---|---|']
        for d in diffs:
            dt = d.get('delta_tau')
            tau = ('' if not dt else
                   f"{dt['diff']:+.2f} [{dt['ci95'][0]:+.2f}, "
                   f"{dt['ci95'][1]:+.2f}] ({dt['share_le_0']:.2f})")
            dr = d.get('delta_retrain') or {}
            ret = ('' if dr.get('diff') is None else
                   f"{dr['diff']:+.2f}" + (
                       f" [{dr['ci95'][0]:+.2f}, {dr['ci95'][1]:+.2f}]"
                       if dr.get('ci95') else ''))
            lines.append(f"| {d['row']} | {tau} | {ret} | "
                         f"{_ci(d['search_minus_random'], '{:+.2f}')} |")
        lines.append('')
    for cmp in data['comparisons']:
        lines.append(
            f"Row {cmp['row']} vs {cmp['against']} (seed {cmp['seed']}): "
            f"board overlap {cmp['board_overlap']}/{cmp['board_size']}, "
            f"same final arch: {cmp['same_final']}, retrained "
            f"{cmp['retrain'][0]} vs {cmp['retrain'][1]}")
    return '\n'.join(lines) + '\n'


def plots(data: dict, out: Path) -> list[str]:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    files = []
    rows = [r for r in data['rows'] if r['kendall']]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for i, r in enumerate(rows):
        k = r['kendall']
        ax.errorbar([i], [k['tau']], yerr=[[k['tau'] - k['ci95'][0]],
                                           [k['ci95'][1] - k['tau']]],
                    fmt='o', capsize=4, c='tab:blue')
        ax.scatter([i] * len(k['per_seed']), k['per_seed'], s=8, c='0.5')
        if (r.get('paper') or {}).get('tau') is not None:
            ax.scatter([i], [r['paper']['tau']], marker='x', c='tab:red')
    c = data['noise_ceiling']
    if c:
        ax.axhspan(*c['ci95'], color='tab:green', alpha=.15,
                   label='stand-alone ceiling (95 % CI)')
        ax.axhline(c['tau'], color='tab:green', lw=1)
    ax.set_xticks(range(len(rows)), [f"#{r['id']}" for r in rows])
    ax.set_ylabel('Kendall tau')
    ax.set_title('tau per row (mean over seeds, bootstrap 95 % CI; x: paper)')
    ax.legend(loc='lower right', fontsize=7)
    fig.tight_layout()
    fig.savefig(out / 'tau_per_row.png')
    plt.close(fig)
    files.append(str(out / 'tau_per_row.png'))
    truth = [np.mean(v) if None not in v else None
             for v in data['standalone']['top1_rank']]
    n = max(len(rows), 1)
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 3), dpi=100,
                             squeeze=False)
    for ax, r in zip(axes[0], rows):
        for e in r['seeds']:
            if 'inherited' in e:
                pts = [(x, t) for x, t in zip(e['inherited'], truth)
                       if t is not None]
                ax.scatter(*zip(*pts), s=8, label=f"seed {e['seed']}")
        ax.set_title(f"#{r['id']} tau {r['kendall']['tau']:.2f}",
                     fontsize=9)
        ax.set_xlabel('inherited top-1 (%)')
    axes[0][0].set_ylabel('stand-alone top-1 (%)')
    fig.tight_layout()
    fig.savefig(out / 'inherited_vs_standalone.png')
    plt.close(fig)
    files.append(str(out / 'inherited_vs_standalone.png'))
    curves = [(r, e) for r in data['rows'] for e in r['seeds']
              if e.get('telemetry', {}).get('board_vs_random')]
    if curves:
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        for r, e in curves:
            c = e['telemetry']['board_vs_random']
            it = [p['iter'] for p in c]
            if c[0]['board'] is not None:
                ax.plot(it, [p['board'] for p in c], lw=1,
                        label=f"#{r['id']} s{e['seed']} board")
            ax.plot(it, [p['random'] for p in c], lw=1, ls='--',
                    label=f"#{r['id']} s{e['seed']} random")
        ax.set_xlabel('iteration')
        ax.set_ylabel('held-out top-1 (%)')
        ax.set_title('board paths vs random paths (same weights)')
        ax.legend(fontsize=5, ncol=2)
        fig.tight_layout()
        fig.savefig(out / 'board_vs_random.png')
        plt.close(fig)
        files.append(str(out / 'board_vs_random.png'))
    return files


def write_report(study, cache, rows: list[dict], out, stats: dict,
                 command: str = '') -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = gather(study, cache, rows)
    data.update(command=command, stages=stats,
                supernet_iters=int(study.supernet_iters),
                seeds=list(study.seeds),
                standalone_schedule=dict(study.standalone),
                retrain_seeds=list(study.retrain['seeds']))
    data['markdown'] = markdown(data, study)
    data['plots'] = plots(data, out)
    atomic_write_json(out / 'study.json', data)
    (out / 'table1.md').write_text(data['markdown'])
    return data


__all__ = ['write_report', 'gather', 'bootstrap_tau', 't_interval',
           'paired_tau_difference', 'welch_difference', 'differences',
           'telemetry_summary', 'random_baseline']
