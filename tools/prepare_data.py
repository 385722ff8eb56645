"""Build the embedded datasets (same as ``python -m cream_mm.datasets``).

Usage: ``python tools/prepare_data.py [--root DIR] [--names ...] [--force]
[--verify]``; see :mod:`cream_mm.datasets.prepare`.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from cream_mm.datasets.prepare import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
