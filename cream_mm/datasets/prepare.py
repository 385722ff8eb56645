"""Build (or check) every embedded set and print what is there.

``python -m cream_mm.datasets [--root DIR] [--names ...] [--force]
[--verify]`` (or ``tools/prepare_data.py``) builds into ``--root``, else
``$CREAM_MM_DATA``, else ``./data/embedded``.
"""
from __future__ import annotations

import argparse
import os
import time

from . import catalog
from .cache import ENV_ROOT, cache_root, read_manifest, verify


def prepare(names=('auto', 'trees', 'composite'), force: bool = False,
            check: bool = False) -> list[dict]:
    """Build the sets ``names``; one summary dict per set."""
    rows = []
    for name in names:
        start = time.time()
        root = catalog.ensure(name, force=force)
        man = read_manifest(root)
        rows.append(dict(name=man['name'], root=str(root),
                         seconds=time.time() - start, meta=man['meta'],
                         bad=verify(root) if check else []))
    return rows


def describe(row: dict) -> str:
    """Readable lines for one set."""
    meta = row['meta']
    lines = [f'{row["name"]}: {row["root"]}  ({row["seconds"]:.1f} s; '
             f'{len(meta["classes"])} classes; source {meta["source"]})']
    for split, n in meta['splits'].items():
        if isinstance(n, dict):  # detection
            ranges = ', '.join(f'{k} {v}' for k, v in n['area_ranges'].items())
            lines.append(f'  {split:<13} {n["images"]:>6} images '
                         f'{n["boxes"]:>6} boxes ({ranges})')
        else:
            lines.append(f'  {split:<13} {n:>6} images')
    if row['bad']:
        lines.append(f'  CHECKSUM MISMATCH: {row["bad"]}')
    return '\n'.join(lines)


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--root', help=f'cache root (default ${ENV_ROOT} or '
                        'data/embedded)')
    parser.add_argument('--names', nargs='+',
                        default=['auto', 'trees', 'composite'],
                        choices=('auto', ) + catalog.NAMES)
    parser.add_argument('--force', action='store_true',
                        help='rebuild even if complete')
    parser.add_argument('--verify', action='store_true',
                        help='check every file against its manifest sha256')
    args = parser.parse_args(argv)
    if args.root:
        os.environ[ENV_ROOT] = args.root
    print(f'embedded datasets under {cache_root().resolve()}')
    rows = prepare(args.names, force=args.force, check=args.verify)
    for row in rows:
        print(describe(row))
    return 1 if any(r['bad'] for r in rows) else 0
