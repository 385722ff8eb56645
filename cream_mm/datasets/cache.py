"""The on-disk cache of the embedded datasets: location, locking, manifests.

Layout (``<root>`` is ``$CREAM_MM_DATA``, else ``data/embedded`` under the
current working directory)::

    <root>/fashion_mnist/fashion_mnist.npz   classification arrays + splits
    <root>/mnist5k/mnist5k.npz
    <root>/trees/{train,val}/*.png           COCO-format detection sets
    <root>/trees/annotations/instances_{train,val}.json
    <root>/composite/...                     (same layout, *.jpg)
    <root>/<name>/MANIFEST.json              written last: sha256 of every
                                             file + what the builder reports

A set is built by a *builder* ``fn(tmp_dir) -> meta`` into a private
temporary folder under an exclusive ``fcntl`` lock, then renamed into place,
so two processes (e.g. the ranks of a distributed run) that both find it
missing never see, nor leave, a half-written set: the second waits for the
lock, then finds the first one's complete set.  A folder is owned by the set
its manifest names: a set is never written over another set's folder (nor
over a folder without a manifest).  On first use in a process every file is
checked against the manifest's sha256; a damaged set is rebuilt in place.
Builders are deterministic
(fixed seeds, fixed zip timestamps, no wall-clock values in any file), so the
same version builds the same bytes on every run.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

ENV_ROOT = 'CREAM_MM_DATA'
DEFAULT_ROOT = 'data/embedded'
MANIFEST = 'MANIFEST.json'

_logged: set[str] = set()


def log(msg: str, level: int = logging.INFO, once: bool = False) -> None:
    """Log through mmengine's current logger (the runner's log when in one).

    ``once=True`` drops a message already logged by this process.
    """
    if once:
        if msg in _logged:
            return
        _logged.add(msg)
    from mmengine.logging import print_log
    print_log(f'[cream_mm.datasets] {msg}', logger='current', level=level)


def cache_root() -> Path:
    """The cache root: ``$CREAM_MM_DATA`` or ``./data/embedded``."""
    return Path(os.environ.get(ENV_ROOT) or DEFAULT_ROOT)


def dataset_dir(name: str, data_root: str | os.PathLike | None = None) -> Path:
    """Folder of set ``name``: ``data_root`` if given, else under the root."""
    return Path(data_root) if data_root else cache_root() / name


def read_manifest(target: Path) -> dict | None:
    """The manifest of a complete set, or None if absent/unreadable."""
    try:
        return json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def is_complete(target: Path, name: str, version: int) -> bool:
    """Whether ``target`` holds a finished build of ``name`` at ``version``."""
    man = read_manifest(target)
    return bool(man) and man.get('name') == name and man.get(
        'version') == version


@contextlib.contextmanager
def file_lock(path: Path):
    """Exclusive advisory lock on ``path`` (created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'a+') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` but the manifest, by rel. path."""
    return {
        p.relative_to(folder).as_posix(): sha256(p)
        for p in sorted(folder.rglob('*'))
        if p.is_file() and p.name != MANIFEST
    }


def verify(target: Path) -> list[str]:
    """Paths whose bytes differ from the manifest (empty list: all good)."""
    man = read_manifest(target)
    if man is None:
        return [str(target / MANIFEST)]
    now = file_hashes(target)
    want = man['files']
    return sorted(k for k in set(now) | set(want) if now.get(k) != want.get(k))


_verified: dict[str, int] = {}


def _refuse_foreign(target: Path, name: str) -> None:
    """Raise unless ``target`` is absent, empty or a build of ``name``."""
    if not target.exists() or not any(target.iterdir()):
        return
    man = read_manifest(target)
    if man is None:
        raise FileExistsError(
            f'{target} exists but is not a cream_mm embedded dataset (no '
            f'readable {MANIFEST}); remove it or point data_root / '
            f'${ENV_ROOT} elsewhere.')
    if man.get('name') != name:
        raise FileExistsError(
            f"data_root {target} holds the embedded set "
            f"{man.get('name')!r}, not {name!r}; refusing to replace it. "
            f"Point data_root at a folder of its own (e.g. "
            f"{target.parent / name}) or leave data_root unset.")


def _damaged(target: Path) -> list[str]:
    """:func:`verify` once per process per build (keyed by the manifest's
    mtime), so the sha256 pass costs a fraction of a second per set."""
    key = str(target.resolve())
    try:
        stamp = (target / MANIFEST).stat().st_mtime_ns
    except OSError:
        return [MANIFEST]
    if _verified.get(key) == stamp:
        return []
    bad = verify(target)
    if not bad:
        _verified[key] = stamp
    return bad


def ensure_built(target: Path, name: str, version: int,
                 builder: Callable[[Path], dict], force: bool = False) -> Path:
    """Build set ``name`` into ``target`` unless a complete build is there.

    Safe to call from several processes at once (lock + atomic rename).
    Refuses a folder that is not one of these caches or that holds another
    set (``FileExistsError`` naming it).  A build whose files differ from
    its manifest is rebuilt (a ``RuntimeError`` names the files and the
    command to run if that fails).
    """
    target = Path(target)
    _refuse_foreign(target, name)
    damaged = []
    if not force and is_complete(target, name, version):
        damaged = _damaged(target)
        if not damaged:
            return target
        log(f'{name}: {len(damaged)} files in {target} differ from '
            f'{MANIFEST} ({", ".join(damaged[:5])}); rebuilding the set',
            level=logging.WARNING)
    lock = target.parent / f'.{target.name}.lock'
    with file_lock(lock):
        _refuse_foreign(target, name)
        if not force and not damaged and is_complete(target, name, version):
            return target  # another process built it while we waited
        log(f'{name}: files missing or outdated in {target}; building them '
            '(first use) ...')
        start = time.time()
        tmp = target.parent / f'.{target.name}.tmp-{os.getpid()}'
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            meta = builder(tmp)
            manifest = dict(name=name, version=version, meta=meta,
                            files=file_hashes(tmp))
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + '\n')
            if target.exists():
                shutil.rmtree(target)
            os.rename(tmp, target)
        except BaseException as err:
            shutil.rmtree(tmp, ignore_errors=True)
            if damaged and isinstance(err, Exception):
                raise RuntimeError(
                    f'{name}: files in {target} differ from {MANIFEST} '
                    f'({", ".join(damaged[:5])}) and rebuilding failed '
                    f'({err}); fix the cause, then run `python -m '
                    f'cream_mm.datasets --names {name} --force`.') from err
            raise
        log(f'{name}: built in {time.time() - start:.1f} s -> {target}')
    return target


def save_npz(path: Path, compresslevel: int = 6, **arrays) -> None:
    """``np.savez_compressed``, but byte-reproducible (fixed timestamps)."""
    with zipfile.ZipFile(path, 'w') as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(
                buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f'{key}.npy',
                                   date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue(), compresslevel=compresslevel)
