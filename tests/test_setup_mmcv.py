"""scripts/mmcv_ops.sh: which mmcv ops setup builds, decided from fake
nvidia-smi / nvcc on PATH (no GPU needed), and the one op check it runs."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
GPU_LINE = 'GPU 0: NVIDIA H200 (UUID: GPU-0)'


def _tool(bin_dir: Path, name: str, body: str):
    path = bin_dir / name
    path.write_text('#!/bin/sh\n' + body + '\n')
    path.chmod(0o755)


def _mode(tmp_path, torch_cuda='12.8', gpu=True, nvcc='12.8', **env):
    """``mmcv_ops_mode TORCH_CUDA`` with only the fake tools visible."""
    fake = tmp_path / 'bin'
    fake.mkdir(exist_ok=True)
    for name in ('nvidia-smi', 'nvcc'):
        (fake / name).unlink(missing_ok=True)
    # a failing nvidia-smi shadows a real one (machines with a driver)
    _tool(fake, 'nvidia-smi', f'echo "{GPU_LINE}"' if gpu else
          'echo "NVIDIA-SMI has failed"; exit 9')
    if nvcc:
        _tool(fake, 'nvcc', f'echo "Cuda compilation tools, release {nvcc},'
              f' V{nvcc}.1"')
    else:  # no nvcc: also hide any real one on PATH
        _tool(fake, 'nvcc', 'exit 127')
        (fake / 'nvcc').unlink()
    path = f'{fake}:/usr/bin:/bin'
    if not nvcc:
        path = f'{fake}:' + ':'.join(
            d for d in ('/usr/bin', '/bin')
            if not (Path(d) / 'nvcc').exists())
    run_env = dict(PATH=path, CUDA_DEFAULT_HOME=str(tmp_path / 'none'),
                   **env)
    out = subprocess.run(
        ['bash', '-c', f'. {ROOT}/scripts/mmcv_ops.sh; '
         f'mmcv_ops_mode "{torch_cuda}"'],
        env=run_env, capture_output=True, text=True)
    return out.returncode, out.stdout.strip(), out.stderr.strip()


def test_no_gpu_builds_cpu_ops(tmp_path):
    assert _mode(tmp_path, gpu=False)[:2] == (0, 'cpu')
    # nvcc alone (a build machine without a GPU) is no reason for CUDA ops
    assert _mode(tmp_path, gpu=False, nvcc='12.8')[:2] == (0, 'cpu')


def test_gpu_and_matching_nvcc_build_cuda_ops(tmp_path):
    assert _mode(tmp_path)[:2] == (0, 'cuda')
    assert _mode(tmp_path, torch_cuda='13.0', nvcc='13.0')[:2] == (0, 'cuda')


def test_gpu_without_nvcc_fails_naming_the_toolkit(tmp_path):
    rc, out, err = _mode(tmp_path, torch_cuda='13.0', nvcc=None)
    assert rc == 1 and out == ''
    assert 'install the CUDA toolkit 13.0 (torch.version.cuda)' in err


def test_cuda_home_nvcc_is_found(tmp_path):
    home = tmp_path / 'cuda'
    (home / 'bin').mkdir(parents=True)
    _tool(home / 'bin', 'nvcc', 'echo "release 12.8, V12.8.1"')
    assert _mode(tmp_path, nvcc=None, CUDA_HOME=str(home))[:2] == (0, 'cuda')


def test_gpu_with_mismatched_nvcc_or_cpu_torch_fails(tmp_path):
    rc, _, err = _mode(tmp_path, torch_cuda='13.0', nvcc='12.4')
    assert rc == 1 and 'CUDA 12.4 but torch is built for CUDA 13.0' in err
    rc, _, err = _mode(tmp_path, torch_cuda='None')
    assert rc == 1 and 'CPU-only build' in err


def test_override(tmp_path):
    assert _mode(tmp_path, nvcc=None,
                 CREAM_MM_MMCV_OPS='cpu')[:2] == (0, 'cpu')
    rc, _, err = _mode(tmp_path, gpu=False, CREAM_MM_MMCV_OPS='cuda')
    assert rc == 1 and 'lists no GPU' in err
    rc, _, err = _mode(tmp_path, CREAM_MM_MMCV_OPS='gpu')
    assert rc == 1 and 'allowed auto, cpu, cuda' in err


def test_op_check_runs_here():
    """The check setup runs after installing mmcv (cpu here; cuda where
    a GPU is present)."""
    import torch
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    script = subprocess.run(
        ['bash', '-c', f'. {ROOT}/scripts/mmcv_ops.sh; '
         'printf "%s" "$MMCV_OPS_CHECK"'], capture_output=True, text=True,
        check=True).stdout
    out = subprocess.run([sys.executable, '-c', script, dev],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f'mmcv ops run on {dev}' in out.stdout


@pytest.mark.parametrize('name', ['setup.sh', 'mmcv_ops.sh'])
def test_scripts_parse(name):
    subprocess.run(['bash', '-n', str(ROOT / 'scripts' / name)], check=True)
