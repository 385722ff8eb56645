"""benchmarks/run_all.py: runs in fresh processes, aggregates figures
(median, min--max, runs), resumes a killed run, renders docs/benchmarks.md;
``--quick`` smoke-tests every registered benchmark."""
import json
import os
import os.path as osp
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BENCH = osp.join(ROOT, 'benchmarks')
sys.path.insert(0, BENCH)

import run_all  # noqa: E402
from run_all import BENCHMARKS, Bench  # noqa: E402

FAKE = textwrap.dedent('''
    """A fake benchmark: its n-th run reports ratio 1 + 0.1 n."""
    import argparse, sys
    sys.path.insert(0, {bench!r})
    from figures import Figures, add_json_arg
    p = argparse.ArgumentParser()
    p.add_argument('--counter')
    p.add_argument('--fail', action='store_true')
    add_json_arg(p)
    a = p.parse_args()
    if a.fail:
        sys.exit('broken benchmark')
    try:
        n = int(open(a.counter).read())
    except FileNotFoundError:
        n = 0
    open(a.counter, 'w').write(str(n + 1))
    f = Figures()
    f.add('ratio', 1 + 0.1 * n, 'fake ratio', 'x')
    f.add('count', 7, 'fake count')
    f.dump(a.json)
''')


@pytest.fixture
def fake(tmp_path):
    script = tmp_path / 'fake_bench.py'
    script.write_text(FAKE.format(bench=BENCH))
    template = tmp_path / 'template.md'
    template.write_text('# B\n\n{{status}}\n{{headline}}\n{{agreement}}'
                        '\n## A\n\n{{bench:fake_a}}\n')

    def bench(name, *extra, target='<= 1.05'):
        return Bench(name, f'title {name}', str(script),
                     ['--counter', str(tmp_path / f'{name}.n'), *extra],
                     targets={'ratio': target}, headline=('ratio', ))

    def run(benches, *argv):
        out = tmp_path / 'out'
        rc = run_all.main(['--out', str(out), '--work-dir',
                           str(tmp_path / 'work'), *argv], benches,
                          str(template))
        return (rc, json.loads((out / 'benchmarks.json').read_text()),
                (out / 'benchmarks.md').read_text())
    return bench, run, tmp_path


def test_aggregates_resumes_and_renders(fake):
    bench, run, tmp = fake
    a, b = bench('fake_a'), bench('fake_b', target='>= 2')
    rc, res, md = run([a, b], '--runs', '3')
    assert rc == 0
    assert [(r['bench'], r['run']) for r in res['runs']] == [
        ('fake_a', 0), ('fake_a', 1), ('fake_a', 2), ('fake_b', 0),
        ('fake_b', 1), ('fake_b', 2)]
    fig = res['summary']['fake_a']['figures']['ratio']
    assert fig['median'] == pytest.approx(1.1)
    assert (fig['min'], fig['max'], fig['runs']) == (
        pytest.approx(1.0), pytest.approx(1.2), 3)
    assert res['summary']['fake_a']['command'] == a.command(False)
    assert res['runs'][0]['machine']['cores'] == os.cpu_count()
    # the table: median, min-max, runs, target status; command; machine
    assert '| fake ratio | **1.10×** | 1.00–1.20× | 3 | ≤ 1.05: **missed ' \
        'by 0.05×** (5%) |' in md
    assert '| fake count | 7 | 7 | 3 |  |' in md
    assert f'`{a.command(False)}` — 3 run(s)' in md
    assert '>= 2' not in md and '≥ 2: **missed by 0.90×**' in md
    assert re.search(r'cores; Python \d', md)
    assert '## Other benchmarks' in md and 'title fake_b' in md
    # resume: a fourth run per benchmark, the first three kept
    rc, res, md = run([a, b], '--runs', '4')
    assert rc == 0 and len(res['runs']) == 8
    assert (tmp / 'fake_a.n').read_text() == '4'
    assert res['summary']['fake_a']['figures']['ratio'][
        'median'] == pytest.approx(1.15)
    # nothing left to do: no process started
    run([a, b], '--runs', '4')
    assert (tmp / 'fake_a.n').read_text() == '4'
    # a changed command drops that benchmark's stored runs only
    a2 = bench('fake_a', '--counter', str(tmp / 'other.n'))
    rc, res, _ = run([a2, b], '--runs', '4')
    assert (tmp / 'fake_b.n').read_text() == '4'
    assert res['summary']['fake_a']['figures']['ratio'][
        'median'] == pytest.approx(1.15)  # runs 0-3 of the new counter
    assert all(r['command'] == a2.command(False) for r in res['runs']
               if r['bench'] == 'fake_a')
    # --render-only rebuilds the page from the stored runs
    rc, res2, md2 = run([a2, b], '--render-only')
    assert res2['runs'] == res['runs'] and '**1.15×**' in md2


def test_a_fresh_full_run_is_compared_with_the_one_it_replaces(fake):
    bench, run, tmp = fake
    a = bench('fake_a')
    a.headline = ('ratio', 'count')
    rc, res, md = run([a], '--runs', '3')
    assert 'One full run is stored' in md
    first = res['runs']
    rc, res, md = run([a], '--runs', '3', '--fresh')
    prev = json.loads((tmp / 'out' / run_all.PREVIOUS).read_text())
    assert prev['runs'] == first  # the replaced run, kept
    assert [r['figures']['ratio']['value'] for r in res['runs']] == \
        pytest.approx([1.3, 1.4, 1.5])
    # ratio: 1.40 (1.30-1.50) against 1.10 (1.00-1.20) -> no; count: yes
    assert ('| fake_a | fake ratio | 1.40× (1.30–1.50×) | 1.10× '
            '(1.00–1.20×) | 0.30× | **no** |') in md
    assert '| fake_a | fake count | 7 (7–7) | 7 (7–7) | 0 | yes |' in md
    assert '1 of 2 figures agree.' in md
    # --render-only keeps the comparison; a resumed run keeps the previous
    _, _, md2 = run([a], '--render-only')
    assert '1 of 2 figures agree.' in md2
    run([a], '--runs', '4')
    assert json.loads((tmp / 'out' / run_all.PREVIOUS).read_text())[
        'runs'] == first


def test_a_failing_benchmark_is_reported_not_stored(fake):
    bench, run, tmp = fake
    a, bad = bench('fake_a'), bench('fake_bad', '--fail')
    rc, res, md = run([a, bad], '--runs', '2')
    assert rc == 1
    assert {r['bench'] for r in res['runs']} == {'fake_a'}
    assert [f['bench'] for f in res['failed']] == ['fake_bad'] * 2
    assert 'broken benchmark' in open(res['failed'][0]['log']).read()
    assert '**Failed runs:** fake_bad run 1, fake_bad run 2' in md
    assert '*fake_bad: not run*' in md


def test_bad_arguments_are_refused(fake):
    bench, run, _ = fake
    with pytest.raises(SystemExit):
        run([bench('fake_a')], '--only', 'nope')
    with pytest.raises(SystemExit):
        run([bench('fake_a')], '--jobs', '2')  # timings need one at a time


def test_registry_is_complete_and_speaks_of_itself_only():
    scripts = {b.script for b in BENCHMARKS}
    on_disk = {f for f in os.listdir(BENCH)
               if f.startswith(('bench_', 'latency_')) and f.endswith('.py')}
    assert on_disk <= scripts, on_disk - scripts  # every benchmark runs
    assert len({b.name for b in BENCHMARKS}) == len(BENCHMARKS)
    for f in os.listdir(BENCH):
        if f.endswith(('.py', '.md')):
            text = open(osp.join(BENCH, f)).read()
            assert not re.search(r'\bsessions?\b \d|since session|'
                                 r'previously', text, re.I), f


@pytest.mark.slow
def test_quick_mode_runs_every_benchmark(tmp_path):
    """``run_all.py --quick``: every registered benchmark runs at tiny sizes
    and reports its figures (1-2 min on 2 cores; CI runs it)."""
    out = tmp_path / 'quick'
    proc = subprocess.run(
        [sys.executable, osp.join(BENCH, 'run_all.py'), '--quick', '--jobs',
         '2', '--out', str(out)], cwd=ROOT, capture_output=True, text=True,
        env=dict(os.environ, OMP_NUM_THREADS='1'), timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((out / 'benchmarks.json').read_text())
    md = (out / 'benchmarks.md').read_text()
    assert set(res['summary']) == {b.name for b in BENCHMARKS}
    for b in BENCHMARKS:
        s = res['summary'][b.name]
        assert s['command'] == b.command(True) and s['runs'] == 1
        assert f'`{s["command"]}`' in md
        # every target and headline names a figure the benchmark reports
        assert set(b.targets) | set(b.headline) <= set(s['figures']), b.name
        for f in s['figures'].values():
            assert f['runs'] == 1 and f['min'] <= f['median'] <= f['max']
            assert f['label'] and 'unit' in f
    assert 'Quick mode' in md and '{{' not in md
