"""Every tool answers ``--help``, validates its arguments, and says what it
did (docs/tools.md)."""
import glob
import os
import runpy
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from conftest import ROOT
from mmengine.analysis import FlopAnalyzer

import cream_mm  # noqa: F401
from cream_mm.evaluation.latency import Timing, table
from cream_mm.models import CreamNet
from cream_mm.models.complexity import arch_cost
from cream_mm.models.heads import CreamClsHead

TOOLS = sorted(p for p in glob.glob(os.path.join(ROOT, 'tools', '*.py'))
               if not p.endswith('__init__.py'))
SHELL = sorted(glob.glob(os.path.join(ROOT, 'tools', '*.sh'))) + [
    os.path.join(ROOT, 'scripts', 'demo.sh')]


def _run_tool(path, argv, monkeypatch):
    monkeypatch.setattr(sys, 'argv', [path, *argv])
    with pytest.raises(SystemExit) as err:
        runpy.run_path(path, run_name='__main__')
    return err.value.code


@pytest.mark.parametrize('path', TOOLS, ids=os.path.basename)
def test_every_tool_answers_help(path, monkeypatch, capsys):
    assert _run_tool(path, ['--help'], monkeypatch) in (0, None)
    out = capsys.readouterr().out
    assert out.startswith('usage:') and len(out.splitlines()) > 2, out


@pytest.mark.parametrize('path', SHELL, ids=os.path.basename)
def test_every_shell_script_prints_usage(path):
    ok = subprocess.run(['bash', path, '--help'], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0 and 'Usage:' in ok.stdout, ok
    if 'demo' in path or 'gpu_check' in path:
        return  # without arguments it runs the main job / the whole check
    bad = subprocess.run(['bash', path], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and 'error: expected' in bad.stderr, bad


@pytest.mark.parametrize('tool, argv, words', [
    ('get_flops', ['--arch', 'cream-14m', '--shape', '0'], '--shape: 0'),
    ('get_flops', ['--arch', 'cream-14m', '--shape', '64', '64', '64'],
     '--shape'),
    ('get_flops', ['missing.py'], "argument config: file 'missing.py'"),
    ('latency', ['--runs', '0'], '--runs: 0'),
    ('latency', ['--models', 'k3e4|k9e9|k3e4|k3e4|k3e4'], '--models'),
    ('pipeline_summary', ['no/such/dir'], 'is not a directory'),
    ('convert_official_checkpoint', ['a.pth.tar'], '--out-backbone'),
    ('convert_official_checkpoint',
     ['a.pth.tar', 'b.pth', '--out-cls', 'c.pth'], 'dst'),
    ('export_onnx', ['--arch', 'cream-14m'], '--out'),
    ('export_onnx', ['--arch', 'cream-14m', '--out', 'x.onnx', '--shape',
                     '16'], '--shape: 16'),
    ('rank_correlation', ['missing.py', 'x.pth'], 'argument config'),
])
def test_bad_arguments_name_the_argument(tool, argv, words, monkeypatch,
                                         capsys):
    path = os.path.join(ROOT, 'tools', f'{tool}.py')
    assert _run_tool(path, argv, monkeypatch) == 2
    assert words in capsys.readouterr().err


def test_get_flops_counts_the_shape_it_prints(monkeypatch, capsys):
    """A non-square --shape is counted as H x W (it was counted H x H)."""
    path = os.path.join(ROOT, 'tools', 'get_flops.py')
    monkeypatch.setattr(sys, 'argv', [path, '--arch', 'cream-14m',
                                      '--shape', '64', '128'])
    runpy.run_path(path, run_name='__main__')
    out = capsys.readouterr().out
    assert '3x64x128' in out
    net = nn.Sequential(CreamNet('cream-14m'), CreamClsHead(1000)).eval()
    fa = FlopAnalyzer(net, (torch.zeros(1, 3, 64, 128), ))
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    ops = fa.by_operator()
    traced = ops['conv'] + ops['linear']
    ours = arch_cost('cream-14m', (64, 128)).macs
    assert abs(ours / traced - 1) < 0.005, (ours, traced)
    assert f'{ours / 1e6:.2f} M' in out


def test_latency_table_escapes_pipes_and_always_has_ratios():
    rows = [Timing('k3e4|k5e6', 64, [2.0, 2.0]), Timing('ref', 224, [4.0])]
    text = table(rows)
    lines = text.splitlines()
    assert all(line.count('|') - line.count('\\|') == 7 for line in lines)
    assert 'k3e4\\|k5e6' in text and lines[0].endswith('x k3e4\\|k5e6 |')
    assert lines[2].endswith('| 1.00 |') and lines[3].endswith('| 2.00 |')
    assert table(rows, 'ref').splitlines()[2].endswith('| 0.50 |')
    with pytest.raises(ValueError, match='choose from'):
        table(rows, 'nope')


def test_pipeline_summary_marks_what_is_missing(tmp_path, capsys):
    import json
    from tools.pipeline_summary import main
    search = tmp_path / 'search' / 'search'
    search.mkdir(parents=True)
    (search / 'searched.json').write_text(json.dumps(dict(
        arch='a', flops=1e6, macs=1e6, params=1e5, resolution=32)))
    (search / 'board.json').write_text('{}')
    for stage, metrics in [('retrain_test', {'accuracy/top1': 50.0}),
                           ('retinanet_test', {'coco/bbox_mAP': 0.1})]:
        run = tmp_path / stage / '20260101_000000'
        run.mkdir(parents=True)
        (run / '20260101_000000.json').write_text(json.dumps(metrics))
    lines = main([str(tmp_path)])
    text = '\n'.join(lines)
    assert '(board.json; missing: pareto.png' in text
    assert f"{tmp_path / 'retrain'} (missing)" in text
    assert 'predictions.pkl (missing)' in text


def test_demo_stage_prints_one_line_and_the_log_tail_on_failure(tmp_path):
    """scripts/stage.sh (what scripts/demo.sh prints per stage)."""
    script = (f'. {ROOT}/scripts/stage.sh; '
              f'run_stage {tmp_path}/ok.log "1/2 fine" '
              f'bash -c "seq 1 500; echo \'Iter(train) [ 7/9]\'"; '
              f'run_stage {tmp_path}/bad.log "2/2 broken" '
              f'bash -c "seq 1 500; echo boom >&2; exit 3"')
    out = subprocess.run(['bash', '-c', script], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 3
    lines = out.stdout.splitlines()
    assert '1/2 fine done in' in lines[0] and f'{tmp_path}/ok.log' in lines[0]
    assert 'seq' not in out.stdout and '250' not in out.stdout
    assert '2/2 broken FAILED (exit 3)' in lines[1]
    assert lines[-2].strip() == 'boom' and lines[-1].endswith('bad.log')
    assert len(lines) == 2 + 40 + 1
    assert (tmp_path / 'ok.log').read_text().startswith('1\n2\n')
