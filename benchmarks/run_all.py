"""Run every benchmark of the project and generate ``docs/benchmarks.md``.

Each registered benchmark (:data:`BENCHMARKS`; a new one registers with one
:class:`Bench` entry) runs ``--runs`` times (default 3), every run in a
fresh process with ``OMP_NUM_THREADS=1``, the runs of all benchmarks taking
turns (run 1 of each, then run 2 of each, ...) so a slow phase of the
machine does not fall on one benchmark only. Each run writes its figures as
JSON (the scripts' ``--json PATH``, :mod:`figures`); this script never reads
their printed prose. The runs are stored in ``docs/benchmarks.json`` after
each one (the raw results the README quotes medians from); a killed run
resumes where it stopped (stored runs of the same command are kept;
``--fresh`` starts over). ``docs/benchmarks.md`` is then rendered from
``benchmarks/benchmarks_template.md`` (the explanatory prose) with, per
figure, the median, min--max and number of runs, the command, the machine
(CPU model, cores, library versions) and the date.

    python benchmarks/run_all.py                 # full: ~1 h on 2 cores
    python benchmarks/run_all.py --fresh         # again: compared with the
                                                 # run it replaces
    python benchmarks/run_all.py --only cream_step --runs 5
    python benchmarks/run_all.py --render-only   # docs from stored runs
    python benchmarks/run_all.py --quick --out /tmp/bench  # smoke test

``--quick`` runs every benchmark once at tiny sizes into ``--out``
(default ``work_dirs/benchmarks_quick``): it checks that every benchmark
runs and reports its figures; its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import os.path as osp
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
TEMPLATE = osp.join(HERE, 'benchmarks_template.md')
# a --fresh full run keeps the full run it replaces here (next to
# benchmarks.json), and the page compares the two
PREVIOUS = 'benchmarks_previous.json'


@dataclass
class Bench:
    """One benchmark run configuration.

    ``script``: file in ``benchmarks/`` (or an absolute path); ``args``: its
    arguments in a full run; ``quick``: its arguments under ``--quick``
    (tiny sizes); ``targets``: figure -> ``'<= 1.7'`` / ``'>= 1000'``;
    ``headline``: figures repeated in the headline table.
    """
    name: str
    title: str
    script: str
    args: list = field(default_factory=list)
    quick: list = field(default_factory=list)
    targets: dict = field(default_factory=dict)
    headline: tuple = ()

    def argv(self, quick: bool) -> list:
        script = self.script if osp.isabs(self.script) else osp.join(
            'benchmarks', self.script)
        return [script] + list(self.quick if quick else self.args)

    def command(self, quick: bool) -> str:
        return 'OMP_NUM_THREADS=1 python ' + shlex.join(self.argv(quick))


TINY_SEARCH = 'configs/search/tiny_cream_embedded.py'
# The paper's search settings (Alg. 1, Sec. 4.1): tau = 200, Eq. 4 on the
# release's 4 matching images, every sampled path scored on the held-out
# subset, exact early stop; held-out images : batch = 2,048 : 1,024 in the
# paper, 128 : 64 here (the tiny config's batch is 64).
PAPER_SEARCH = ['model.meta.interval=200', 'model.meta.match_images=4',
                'model.scoring.early_stop=True',
                'search_val_dataloader.dataset.indices=128',
                'search_val_dataloader.batch_size=128']
QUICK_SEARCH = ['--iters', '6', '--cfg-options', 'model.warmup.iters=2',
                'model.meta.interval=3', 'train_dataloader.batch_size=8',
                'search_val_dataloader.dataset.indices=16',
                'search_val_dataloader.batch_size=16']

BENCHMARKS = [
    Bench('cream_search_faithful',
          'Whole search, paper settings: every sampled path scored on the '
          'held-out subset', 'bench_cream_search.py',
          [TINY_SEARCH, '--cfg-options', *PAPER_SEARCH,
           'model.scoring.screen=False'],
          [TINY_SEARCH, *QUICK_SEARCH, 'model.scoring.screen=False'],
          targets={'ratio': '<= 1.7'}, headline=('ratio', )),
    Bench('cream_search_screens',
          'Whole search, paper settings with the opt-in screens (entry '
          'screen)', 'bench_cream_search.py',
          [TINY_SEARCH, '--cfg-options', *PAPER_SEARCH,
           'model.scoring.screen=entry', 'model.scoring.screen_sigma=1.0'],
          [TINY_SEARCH, *QUICK_SEARCH, 'model.scoring.screen=entry'],
          targets={'ratio': '<= 1.3'}, headline=('ratio', )),
    Bench('cream_step', 'Cream step vs SPOS step, right after the start',
          'bench_cream_step.py', ['--data', 'embedded'],
          ['--steps', '6', '--warm', '2', '--batch', '8', '--size', '32',
           '--depth', '1', '--k', '2', '--tau', '3', '--val-images', '128'],
          targets={'ratio': '<= 1.5'}, headline=('ratio', )),
    Bench('flops_lut', 'FLOPs of a path: look-up table vs hook counting',
          'bench_flops_lut.py', [], ['--paths', '2', '--size', '32'],
          targets={'ratio': '>= 1000'}, headline=('ratio', )),
    Bench('latency_ratios', 'Latency (Table 4), batch 1, one thread',
          'latency_ratios.py', [],
          ['--runs', '2', '--warmup', '1', '--block', '1'],
          targets={
              'cream-s_over_efficientnet_b0': '<= 0.90',
              'cream-14m_over_mobilenet_v3_small': '<= 0.55',
              'cream-s_frozen_over_efficientnet_b0_frozen': '<= 0.90',
              'cream-14m_frozen_over_mobilenet_v3_small_frozen': '<= 0.55',
              'cream-14m_frozen_over_mobilenet_v3_small': '<= 0.55'},
          headline=('cream-s_over_efficientnet_b0',
                    'cream-14m_over_mobilenet_v3_small')),
    Bench('kshot_memory', 'K-shot (K=8) vs one-shot step: memory and time',
          'bench_kshot_memory.py',
          ['--k', '8', '--size', '224', '--batch', '32', '--steps', '3',
           '--depth', '6'],
          ['--k', '2', '--size', '32', '--batch', '4', '--steps', '1',
           '--depth', '1', '--paths', '2', '--modes', 'oneshot', 'kshot',
           '--no-interleaved'],
          targets={'ratio_step_peak': '<= 1.1'},
          headline=('ratio_step_peak', )),
    Bench('latency_predictor',
          'Latency table: predicted vs measured end-to-end latency of 50 '
          'random exported architectures, per runtime',
          'bench_latency_predictor.py', [], ['--quick'],
          targets={'fused_within10_calibrated': '>= 90'},
          headline=('fused_within10_calibrated', )),
]


# ------------------------------------------------------------------ machine
def machine() -> dict:
    """CPU model, cores, Python and library versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    out = dict(cpu=cpu, cores=os.cpu_count(),
               python=platform.python_version(), os=platform.platform())
    for lib in ('torch', 'mmcv', 'mmengine', 'mmpretrain', 'mmdet'):
        try:
            from importlib.metadata import version
            out[lib] = version(lib)
        except Exception:  # noqa: BLE001  (not installed)
            out[lib] = 'not installed'
    return out


def machine_line(m: dict) -> str:
    libs = ', '.join(f'{k} {m[k]}' for k in ('torch', 'mmcv', 'mmengine',
                                              'mmpretrain', 'mmdet')
                     if k in m)
    return (f"{m['cpu']}, {m['cores']} cores; Python {m['python']}, "
            f'{libs}')


# ------------------------------------------------------------------ results
def load(path: str) -> dict:
    if osp.exists(path):
        with open(path) as f:
            return json.load(f)
    return dict(runs=[])


def save(path: str, results: dict):
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, path)


def aggregate(runs: list) -> dict:
    """figure -> dict(label, unit, values, median, min, max, runs)."""
    figs: dict = {}
    for r in runs:
        for key, f in r['figures'].items():
            d = figs.setdefault(key, dict(label=f['label'], unit=f['unit'],
                                          values=[]))
            d['values'].append(f['value'])
    for d in figs.values():
        v = d['values']
        d.update(median=statistics.median(v), min=min(v), max=max(v),
                 runs=len(v))
    return figs


def summary(results: dict, benches: list) -> dict:
    """Per benchmark: command, runs, dates and aggregated figures (what
    the README quotes)."""
    out = {}
    for b in benches:
        runs = [r for r in results['runs'] if r['bench'] == b.name]
        if not runs:
            continue
        out[b.name] = dict(title=b.title, command=runs[0]['command'],
                           runs=len(runs), figures={
                               k: {x: v[x] for x in ('label', 'unit',
                                                     'median', 'min', 'max',
                                                     'runs')}
                               for k, v in aggregate(runs).items()},
                           targets=b.targets)
    return out


# ------------------------------------------------------------------ running
def short_path(path: str) -> str:
    """``path`` relative to the repository when inside it."""
    rel = osp.relpath(path, ROOT)
    return path if rel.startswith('..') else rel


def run_one(b: Bench, i: int, quick: bool, work_dir: str) -> dict:
    """One run of ``b`` in a fresh process; its record (or an error)."""
    os.makedirs(work_dir, exist_ok=True)
    stem = osp.join(work_dir, f'{b.name}.{i}')
    js = stem + '.json'
    if osp.exists(js):
        os.remove(js)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(
                   p for p in [ROOT, os.environ.get('PYTHONPATH')] if p))
    load_avg = os.getloadavg()[0] if hasattr(os, 'getloadavg') else None
    t0 = time.time()
    with open(stem + '.log', 'w') as log:
        rc = subprocess.call([sys.executable, *b.argv(quick), '--json', js],
                             cwd=ROOT, env=env, stdout=log,
                             stderr=subprocess.STDOUT)
    wall = time.time() - t0
    rec = dict(bench=b.name, run=i, command=b.command(quick), rc=rc,
               wall_s=round(wall, 1), load_avg=load_avg, machine=machine(),
               date=datetime.datetime.now(datetime.timezone.utc).isoformat(
                   timespec='seconds'), log=short_path(stem + '.log'))
    if rc == 0 and osp.exists(js):
        with open(js) as f:
            rec.update(json.load(f))
    else:
        with open(stem + '.log') as f:
            rec['error'] = f.read()[-3000:]
        rec['log'] = stem + '.log'  # failed runs are not stored
    return rec


def run_all(benches: list, runs: int, results_path: str, work_dir: str,
            quick: bool = False, fresh: bool = False, jobs: int = 1) -> dict:
    """Run what is missing of ``runs`` runs per benchmark; store each run
    in ``results_path`` as soon as it ends. Returns the results."""
    results = load(results_path)
    current = {b.name: b.command(quick) for b in benches}
    kept = [r for r in results['runs'] if r['bench'] not in current or (
        not fresh and r['command'] == current[r['bench']])]
    if len(kept) < len(results['runs']):
        print(f'dropped {len(results["runs"]) - len(kept)} stored run(s) '
              f'({"--fresh" if fresh else "changed commands"})')
    results['runs'] = kept
    done = {(r['bench'], r['run']) for r in kept}
    todo = [(b, i) for i in range(runs) for b in benches
            if (b.name, i) not in done]
    if done & {(b.name, i) for b in benches for i in range(runs)}:
        print(f'resuming: {len(done)} run(s) stored, {len(todo)} to go')
    failed = []

    def finish(rec):
        if rec['rc'] or 'figures' not in rec:
            failed.append(rec)
            print(f"FAILED {rec['bench']} run {rec['run'] + 1} "
                  f"(log {rec['log']}):\n{rec['error'][-1500:]}")
            return
        results['runs'].append(rec)
        results['runs'].sort(key=lambda r: (r['bench'], r['run']))
        save(results_path, results)
        print(f"{rec['bench']} run {rec['run'] + 1}/{runs}: "
              f"{rec['wall_s']:.0f} s", flush=True)

    if jobs > 1:
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            for rec in pool.map(lambda t: run_one(t[0], t[1], quick,
                                                  work_dir), todo):
                finish(rec)
    else:
        for b, i in todo:
            finish(run_one(b, i, quick, work_dir))
    results['quick'] = quick
    results['failed'] = [dict(bench=r['bench'], run=r['run'], log=r['log'])
                         for r in failed]
    save(results_path, results)
    return results


# ---------------------------------------------------------------- rendering
def suffix(unit: str) -> str:
    return '×' if unit == 'x' else f' {unit}' if unit else ''


def fmt(v: float, unit: str, with_unit: bool = True) -> str:
    if unit == '' and float(v).is_integer():
        return f'{int(v):,}'
    a = abs(v)
    if a >= 1000:
        s = f'{v:,.0f}'
    elif a >= 100:
        s = f'{v:.0f}'
    elif a >= 10:
        s = f'{v:.1f}'
    elif a >= 0.1 or a == 0:
        s = f'{v:.2f}'
    else:
        s = f'{v:.2g}'
    return s + (suffix(unit) if with_unit else '')


def target_status(median: float, target: str, unit: str,
                  check: bool = True) -> str:
    op, val = target.split()
    val = float(val)
    ok = median <= val if op == '<=' else median >= val
    sign = '≤' if op == '<=' else '≥'
    if not check:
        return f'{sign} {val:g} (not checked)'
    if ok:
        return f'{sign} {val:g}: met'
    miss = abs(median - val)
    return (f'{sign} {val:g}: **missed by {fmt(miss, unit)}** '
            f'({miss / val:.0%})')


def figure_rows(b: Bench, figs: dict, keys=None, name_col=None,
                check: bool = True) -> list:
    rows = []
    for key in keys or figs:
        if key not in figs:
            continue
        f = figs[key]
        med, lo, hi, u = f['median'], f['min'], f['max'], f['unit']
        bold = key in b.targets or key in b.headline
        m = fmt(med, u)
        spread = (fmt(lo, u) if lo == hi else
                  f'{fmt(lo, u, False)}–{fmt(hi, u)}')
        target = (target_status(med, b.targets[key], u, check)
                  if key in b.targets else '')
        first = [name_col] if name_col else []
        rows.append('| ' + ' | '.join(first + [
            f['label'], f'**{m}**' if bold else m, spread,
            str(f['runs']), target]) + ' |')
    return rows


def bench_section(b: Bench, results: dict, check: bool = True) -> str:
    runs = [r for r in results['runs'] if r['bench'] == b.name]
    if not runs:
        return f'*{b.name}: not run* (`{b.command(False)}`)\n'
    figs = aggregate(runs)
    dates = sorted(r['date'][:10] for r in runs)
    when = dates[0] if dates[0] == dates[-1] else f'{dates[0]} to {dates[-1]}'
    wall = statistics.median(r['wall_s'] for r in runs)
    lines = [f'`{runs[0]["command"]}` — {len(runs)} run(s), each in a fresh '
             f'process, {when}, about {wall:.0f} s per run.', '',
             '| figure | median | min–max | runs | target |',
             '|---|---|---|---|---|'] + figure_rows(b, figs, check=check)
    return '\n'.join(lines) + '\n'


def headline(benches: list, results: dict, check: bool = True) -> str:
    rows = ['| benchmark | figure | median | min–max | runs | target |',
            '|---|---|---|---|---|---|']
    for b in benches:
        runs = [r for r in results['runs'] if r['bench'] == b.name]
        if runs and b.headline:
            rows += figure_rows(b, aggregate(runs), b.headline,
                                f'[{b.name}](#{b.name.replace("_", "-")})',
                                check)
    return '\n'.join(rows) + '\n'


def agrees(a: dict, b: dict) -> bool:
    """Two full runs' aggregates of one figure agree when each median lies
    within the other's min--max."""
    return (b['min'] <= a['median'] <= b['max'] and
            a['min'] <= b['median'] <= a['max'])


def agreement(benches: list, results: dict, previous: dict | None) -> str:
    """The target and headline figures of this full run beside those of the
    previous one (``PREVIOUS``): medians, spreads, difference, agreement."""
    if not previous or not previous.get('runs'):
        return ('*One full run is stored. Running `python benchmarks/'
                'run_all.py --fresh` again keeps this one as the previous '
                'run and compares the two here.*\n')
    dates = sorted(r['date'][:10] for r in previous['runs'])
    rows = [f'Previous full run: {dates[0]}'
            + ('' if dates[0] == dates[-1] else f' to {dates[-1]}')
            + f' (`{PREVIOUS}`). Two runs agree on a figure when each '
            "median lies within the other's min–max.", '',
            '| benchmark | figure | this run: median (min–max) | previous '
            'run: median (min–max) | difference | agree |',
            '|---|---|---|---|---|---|']
    n_agree = n = 0
    for b in benches:
        cur = aggregate([r for r in results['runs'] if r['bench'] == b.name])
        old = aggregate([r for r in previous['runs']
                         if r['bench'] == b.name])
        for key in dict.fromkeys([*b.targets, *b.headline]):
            if key not in cur or key not in old:
                continue
            c, o, u = cur[key], old[key], cur[key]['unit']
            ok = agrees(c, o)
            n, n_agree = n + 1, n_agree + ok
            rows.append(
                f"| {b.name} | {c['label']} | {fmt(c['median'], u)} "
                f"({fmt(c['min'], u, False)}–{fmt(c['max'], u)}) | "
                f"{fmt(o['median'], u)} ({fmt(o['min'], u, False)}–"
                f"{fmt(o['max'], u)}) | "
                f"{fmt(c['median'] - o['median'], u)} | "
                f"{'yes' if ok else '**no**'} |")
    rows += ['', f'{n_agree} of {n} figures agree.']
    return '\n'.join(rows) + '\n'


def status(results: dict, note: str | None, quick: bool) -> str:
    runs = results['runs']
    if not runs:
        return '*No benchmark has been run yet.*\n'
    machines = {json.dumps(r['machine'], sort_keys=True) for r in runs}
    dates = sorted(r['date'][:10] for r in runs)
    loads = [r['load_avg'] for r in runs if r.get('load_avg') is not None]
    n = sorted({sum(1 for r in runs if r['bench'] == b)
                for b in {r['bench'] for r in runs}})
    n_runs = str(n[0]) if n[0] == n[-1] else f'{n[0]}–{n[-1]}'
    when = dates[0] if dates[0] == dates[-1] else f'{dates[0]} to {dates[-1]}'
    cmd = 'python benchmarks/run_all.py' + (' --quick' if quick else '')
    lines = [f'Generated by `{cmd}` (raw runs: `benchmarks.json` next to '
             f'this file) from {n_runs} run(s) per benchmark, {when}, every '
             'run in a fresh process with `OMP_NUM_THREADS=1`, on:']
    lines += [''] + [f'- {machine_line(json.loads(m))}' for m in machines]
    if loads:
        lines += ['', f'Load average at the start of the runs: '
                  f'{min(loads):.1f}–{max(loads):.1f} (a loaded machine '
                  'widens the spread).']
    if quick:
        lines += ['', '**Quick mode: tiny sizes; these numbers only show '
                  'that every benchmark runs (targets not checked).**']
    if note:
        lines += ['', f'**{note}**']
    if results.get('failed'):
        lines += ['', '**Failed runs:** ' + ', '.join(
            f"{f['bench']} run {f['run'] + 1}" for f in results['failed'])]
    return '\n'.join(lines) + '\n'


def render(benches: list, results: dict, template: str,
           note: str | None = None, quick: bool = False,
           previous: dict | None = None) -> str:
    with open(template) as f:
        text = f.read()
    text = text.replace('{{status}}', status(results, note, quick))
    text = text.replace('{{agreement}}',
                        '' if quick else agreement(benches, results,
                                                   previous))
    text = text.replace('{{headline}}', headline(benches, results,
                                                 not quick))
    placed = set(re.findall(r'\{\{bench:([\w-]+)\}\}', text))
    for b in benches:
        text = text.replace('{{bench:%s}}' % b.name,
                            f'<a id="{b.name.replace("_", "-")}"></a>\n\n'
                            + bench_section(b, results, not quick))
    extra = [b for b in benches if b.name not in placed]
    if extra:
        text += '\n## Other benchmarks\n'
        for b in extra:
            text += (f'\n### {b.title}\n\n<a id="'
                     f'{b.name.replace("_", "-")}"></a>\n\n'
                     + bench_section(b, results, not quick))
    unknown = placed - {b.name for b in benches}
    for name in unknown:  # a template section of no registered benchmark
        text = text.replace('{{bench:%s}}' % name,
                            f'*{name}: not a registered benchmark*\n')
    return ('<!-- Generated by benchmarks/run_all.py: edit '
            'benchmarks/benchmarks_template.md (prose) or rerun the '
            'benchmarks, not this file. -->\n' + text)


def main(argv=None, benches=None, template=TEMPLATE):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='registered benchmarks: ' + ', '.join(
            b.name for b in (benches or BENCHMARKS)))
    p.add_argument('--runs', type=int,
                   help='runs per benchmark (default 3; --quick: 1)')
    p.add_argument('--only', nargs='+', metavar='NAME',
                   help='run only these benchmarks (the docs keep the '
                   'stored runs of the others)')
    p.add_argument('--quick', action='store_true',
                   help='tiny sizes, structure only (smoke test)')
    p.add_argument('--out', help='folder of benchmarks.md and '
                   'benchmarks.json (default docs/; --quick: '
                   'work_dirs/benchmarks_quick)')
    p.add_argument('--work-dir', help='logs and per-run JSON (default '
                   'work_dirs/benchmarks, or OUT/runs with --quick)')
    p.add_argument('--fresh', action='store_true',
                   help='discard the stored runs of the selected benchmarks '
                   'instead of resuming (--quick always starts fresh)')
    p.add_argument('--render-only', action='store_true',
                   help='regenerate benchmarks.md from the stored runs')
    p.add_argument('--note', help='a line of bold text added to the docs '
                   '(e.g. that the machine was loaded)')
    p.add_argument('--jobs', type=int, default=1,
                   help='benchmarks run at once; > 1 only with --quick '
                   '(concurrent runs disturb each other\'s timings)')
    args = p.parse_args(argv)
    benches = list(benches or BENCHMARKS)
    if args.only:
        unknown = set(args.only) - {b.name for b in benches}
        if unknown:
            p.error(f'--only: unknown {sorted(unknown)}; registered: '
                    f'{[b.name for b in benches]}')
    if args.jobs > 1 and not args.quick:
        p.error('--jobs > 1 needs --quick: concurrent benchmarks disturb '
                'each other\'s timings')
    runs = args.runs or (1 if args.quick else 3)
    if runs < 1:
        p.error(f'--runs must be >= 1, got {runs}')
    out = args.out or (osp.join(ROOT, 'work_dirs', 'benchmarks_quick')
                       if args.quick else osp.join(ROOT, 'docs'))
    work_dir = args.work_dir or (osp.join(out, 'runs') if args.quick else
                                 osp.join(ROOT, 'work_dirs', 'benchmarks'))
    results_path = osp.join(out, 'benchmarks.json')
    previous_path = osp.join(out, PREVIOUS)
    if args.fresh and not args.quick and not args.render_only:
        replaced = load(results_path)
        if replaced['runs']:  # kept for the comparison
            save(previous_path, replaced)
    if args.render_only:
        results = load(results_path)
        args.quick = args.quick or results.get('quick', False)
    else:
        selected = [b for b in benches
                    if not args.only or b.name in args.only]
        results = run_all(selected, runs, results_path, work_dir,
                          args.quick, args.fresh or args.quick, args.jobs)
    results['summary'] = summary(results, benches)
    save(results_path, results)
    md = osp.join(out, 'benchmarks.md')
    with open(md, 'w') as f:
        f.write(render(benches, results, template, args.note, args.quick,
                       None if args.quick else load(previous_path)))
    print(f'wrote {md} and {results_path}')
    return 1 if results.get('failed') else 0


if __name__ == '__main__':
    sys.exit(main())
