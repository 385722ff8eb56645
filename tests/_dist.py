"""The 2-process gloo run shared by the distributed search tests:
``tools/dist_train.sh`` on a config, then the per-rank lines that
``SearchDigestHook`` wrote."""
import json
import os
import subprocess

from conftest import PYTHON, ROOT, TESTS, free_port


def dist_train(config, work_dir, timeout: int) -> list[list[dict]]:
    """Run ``config`` on 2 processes into ``work_dir`` (a Path); returns
    the digest rows of rank 0 and rank 1."""
    env = dict(os.environ, PYTHON=PYTHON, PORT=str(free_port()),
               PYTHONPATH=TESTS, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir',
         str(work_dir)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    rows = []
    for r in (0, 1):
        with open(work_dir / 'search' / f'digest_rank{r}.jsonl') as f:
            rows.append([json.loads(line) for line in f])
    return rows
