"""The study's unit cache: one JSON file per finished unit of work.

A unit (a stand-alone training of one path with one seed, the inherited
accuracies of one supernet, ...) is identified by a JSON-able *key* (every
setting its result depends on); its file is
``<root>/<kind>/<sha1(key)[:16]>.json`` holding ``{"key": ..., "result":
...}``. Files are written atomically (temporary file + ``os.replace``), so a
killed study leaves only finished units behind and resumes with the rest;
a changed setting changes the key, never reuses a stale result.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def key_digest(key) -> str:
    """Short SHA-1 of the canonical JSON of ``key``."""
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def atomic_write_json(path, data) -> None:
    """Write ``data`` as JSON to ``path`` via a temporary file and
    ``os.replace`` (a reader sees the old file or the whole new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


class UnitCache:
    """Finished units under ``root`` (see module docstring)."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, kind: str, key) -> Path:
        return self.root / kind / f'{key_digest(key)}.json'

    def get(self, kind: str, key):
        """The cached result of ``key`` or None (also for a file of another
        key with the same digest, or an unreadable file)."""
        p = self.path(kind, key)
        if not p.is_file():
            return None
        try:
            data = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        canon = json.loads(json.dumps(key, sort_keys=True, default=str))
        return data['result'] if data.get('key') == canon else None

    def put(self, kind: str, key, result) -> Path:
        p = self.path(kind, key)
        atomic_write_json(p, dict(key=key, result=result))
        return p

    def count(self, kind: str) -> int:
        d = self.root / kind
        return len(list(d.glob('*.json'))) if d.is_dir() else 0


__all__ = ['UnitCache', 'atomic_write_json', 'key_digest']
