"""Checkpoints that load under ``torch.load(weights_only=True)``.

torch >= 2.6 unpickles with an allow-list.  A checkpoint written by a plain
mmengine 0.10 ``Runner`` needs these globals beyond torch's own:

* ``mmengine.logging.history_buffer.HistoryBuffer`` (``message_hub``), whose
  ``__getstate__`` also pickles ``HistoryBuffer.min/max/current/mean`` as
  ``builtins.getattr(HistoryBuffer, 'min')`` -- ``getattr`` is an
  arbitrary-attribute gadget and is never allow-listed here;
* numpy: ``ndarray``, ``dtype``, the concrete ``numpy.dtypes.*DType``
  classes (found only while unpickling, not by a static scan),
  ``_core.multiarray._reconstruct`` and ``_core.multiarray.scalar``
  (history arrays, ``eta``, dataset metainfo).

So there are two halves:

* save side -- :func:`sanitize_checkpoint` (run by ``SafeCheckpointHook`` in
  ``before_save_checkpoint``) turns numpy scalars into Python numbers, numpy
  arrays into lists (so weights + metadata load with plain torch, no
  allow-list), and every ``HistoryBuffer`` into a stand-in that pickles as
  ``HistoryBuffer(log_array, count_array, max_length)`` -- unpickling calls
  the allow-listed constructor, the arrays stay compact numpy arrays (exact
  dtype), and the buffers round-trip exactly with no load-side fix-up;
* load side -- :data:`SAFE_GLOBALS` is registered with
  ``torch.serialization.add_safe_globals`` on ``import cream_mm``, and
  :func:`safe_load` (also installed as mmengine's loader for local paths)
  calls ``torch.load(..., weights_only=True)`` explicitly -- so even
  ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` cannot turn it off -- and reports a
  refused file with the globals it asked for.
"""
from __future__ import annotations

import copy
import os.path as osp
import pickle
import re
import zipfile
from collections import OrderedDict

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

_multiarray = (getattr(np, '_core', None) or np.core).multiarray

#: Globals (besides torch's defaults) that cream_mm lets ``weights_only``
#: unpickle: data-only constructors.  ``builtins.getattr`` is NOT here.
#: The two numpy module spellings cover files from numpy 2 and numpy 1.
#: numpy 2 unpickles ``dtype('f8')`` as a ``numpy.dtypes.Float64DType``
#: instance and then sets its state, so the concrete dtype classes must be
#: allowed too (only numeric, bool and fixed-width string ones).
_DTYPE_CLASSES = [
    'Bool', 'Int8', 'UInt8', 'Int16', 'UInt16', 'Int32', 'UInt32', 'Int64',
    'UInt64', 'Long', 'ULong', 'LongLong', 'ULongLong', 'Float16', 'Float32',
    'Float64', 'LongDouble', 'Complex64', 'Complex128', 'CLongDouble',
    'Bytes', 'Str'
]
SAFE_GLOBALS = [
    HistoryBuffer,
    np.ndarray,
    np.dtype,
    (_multiarray._reconstruct, 'numpy._core.multiarray._reconstruct'),
    (_multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
    (_multiarray.scalar, 'numpy._core.multiarray.scalar'),
    (_multiarray.scalar, 'numpy.core.multiarray.scalar'),
    *dict.fromkeys(getattr(np.dtypes, f'{name}DType')
                   for name in _DTYPE_CLASSES),
]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs globals outside the ``weights_only`` allow-list."""


class CorruptCheckpointError(ValueError):
    """A file is not a readable checkpoint: empty, truncated or damaged."""


#: How ``torch.save(..., _use_new_zipfile_serialization=False)`` files start
#: (pickle protocol 2, then the legacy magic number as a long).
_LEGACY_HEAD = b'\x80\x02\x8a\x0a'
#: weights_only unpickler messages that mean damaged bytes, not a refused
#: global (anything else is reported as unsafe).
_CORRUPT_PICKLE = re.compile(r'Unsupported operand|invalid load key|'
                             r'truncated|ran out of input|EOF', re.I)


def format_problem(path: str, verify_crc: bool = False) -> str | None:
    """What makes ``path`` unreadable as a ``torch.save`` file, or ``None``.

    Reads the zip directory (and, with ``verify_crc``, every member's CRC)
    without unpickling anything.  An empty file, a zip archive without its
    end (interrupted download or save), a damaged member, or bytes that are
    neither the zip nor the legacy format are reported.
    """
    size = osp.getsize(path)
    if size == 0:
        return 'is empty (0 bytes)'
    with open(path, 'rb') as f:
        head = f.read(4)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                if not any(n.split('/')[-1] == 'data.pkl'
                           for n in zf.namelist()):
                    return ('is a zip archive but not a torch.save '
                            'checkpoint (no data.pkl inside)')
                bad = zf.testzip() if verify_crc else None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
            return f'is a damaged zip archive ({err})'
        if bad is not None:
            return (f'is corrupt: archive member {bad!r} fails its CRC '
                    'check (damaged bytes)')
        return None
    if head.startswith(b'PK'):
        return (f'is truncated: a zip archive of {size} bytes whose end is '
                'missing (an interrupted download or save)')
    if head == _LEGACY_HEAD:
        return None
    return (f'is not a PyTorch checkpoint ({size} bytes, neither the '
            'torch.save zip format nor the legacy format); it may be '
            'truncated or corrupt')


def _corrupt(path: str, problem: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f"checkpoint '{path}' {problem}. Re-download or re-save it; "
        'nothing was loaded from it.')


def register_safe_globals() -> None:
    """Add :data:`SAFE_GLOBALS` to torch's ``weights_only`` allow-list."""
    torch.serialization.add_safe_globals(SAFE_GLOBALS)


class _HistoryBufferState:
    """Pickles as ``HistoryBuffer(log_history, count_history, max_length)``.

    A ``HistoryBuffer`` pickles its own ``__dict__`` plus the class-wide
    statistics methods (``builtins.getattr`` gadgets); this stand-in pickles
    only the constructor call.  The arrays stay numpy arrays (allow-listed,
    compact, exact dtype) -- tensors would be turned back by ``np.array``,
    which numpy 2 deprecates for ``Tensor.__array__``.
    """

    def __init__(self, buf: HistoryBuffer):
        self.args = (buf._log_history, buf._count_history, buf.max_length)

    def __reduce__(self):
        return HistoryBuffer, self.args


def sanitize_checkpoint(obj):
    """Return ``obj`` with every value ``weights_only`` would refuse replaced.

    numpy scalar -> Python number, numpy array -> (nested) list, numpy dtype
    -> ``str``, ``HistoryBuffer`` -> exact-round-trip stand-in, dict
    subclasses (e.g. ``ConfigDict``) -> ``dict``.  Containers are copied only
    where something changed (so ``state_dict._metadata`` survives) and the
    input is never mutated.
    """
    if isinstance(obj, HistoryBuffer):
        return _HistoryBufferState(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.dtype):
        return str(obj)
    if isinstance(obj, dict):
        new = {k: sanitize_checkpoint(v) for k, v in obj.items()}
        if type(obj) not in (dict, OrderedDict):
            return new
        if all(new[k] is v for k, v in obj.items()):
            return obj
        out = copy.copy(obj)
        out.update(new)
        return out
    if type(obj) in (list, tuple):
        new = [sanitize_checkpoint(v) for v in obj]
        if all(a is b for a, b in zip(new, obj)):
            return obj
        return type(obj)(new)
    return obj


def unsafe_globals(path: str) -> list[str]:
    """Globals in a ``torch.save`` zip file outside the allow-list (static
    scan, nothing is executed); ``[]`` for other file formats."""
    if not zipfile.is_zipfile(path):
        return []
    return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))


def _refusal(path: str, found: list[str], detail: str = '') -> str:
    what = ', '.join(found) if found else detail
    return (f"refusing to load checkpoint '{path}': it needs pickle globals "
            f'outside the weights_only allow-list ({what}); loading it could '
            'run arbitrary code. Checkpoints saved with SafeCheckpointHook '
            'need only allow-listed ones. Only if you trust its source '
            '(e.g. saved by plain mmengine), unpickle it once yourself, pass '
            'it through cream_mm.engine.sanitize_checkpoint and torch.save '
            'the result.')


def safe_load(path: str, map_location=None):
    """``torch.load(path, weights_only=True)`` with a clear refusal error.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        CorruptCheckpointError: the file is empty, truncated or damaged.
        UnsafeCheckpointError: the file needs non-allow-listed globals.
    """
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    problem = format_problem(path)
    if problem:
        raise _corrupt(path, problem)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        detail = str(err).split('WeightsUnpickler error:')[-1].strip()
        detail = detail.splitlines()[0] if detail else ''
        found = unsafe_globals(path)
        if not found and _CORRUPT_PICKLE.search(detail):
            raise _corrupt(path, f'is damaged ({detail})') from err
        raise UnsafeCheckpointError(_refusal(path, found, detail)) from err
    except (EOFError, RuntimeError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        if isinstance(err, RuntimeError) and 'PytorchStreamReader' not in \
                first and 'zip archive' not in first:
            raise
        raise _corrupt(path, f'is truncated or damaged ({first or "EOF"})'
                       ) from err


def check_checkpoint(path: str, field: str = 'checkpoint') -> None:
    """Validate a local checkpoint before a run, naming the config/CLI field.

    Remote paths (``scheme://``) are left to mmengine's loaders.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CorruptCheckpointError: ``path`` is empty, truncated or damaged
            (every zip member's CRC is verified).
        UnsafeCheckpointError: ``path`` needs non-allow-listed globals.
    """
    if '://' in str(path):
        return
    path = osp.expanduser(str(path))
    if not osp.isfile(path):
        raise FileNotFoundError(f"{field}: checkpoint '{path}' does not exist")
    problem = format_problem(path, verify_crc=True)
    if problem:
        raise CorruptCheckpointError(f'{field}: ' + str(_corrupt(path,
                                                                 problem)))
    found = unsafe_globals(path)
    if found:
        raise UnsafeCheckpointError(f'{field}: ' + _refusal(path, found))


def load_from_local_safe(filename, map_location):
    """mmengine ``CheckpointLoader`` scheme for local paths (prefix ``''``),
    replacing ``load_from_local``: same contract, explicit ``weights_only``."""
    return safe_load(filename, map_location=map_location)


def install_local_loader() -> None:
    """Route mmengine's local-file checkpoint loading through
    :func:`safe_load` (``Runner.load_checkpoint``/``resume``,
    ``load_checkpoint``, ``init_cfg=dict(type='Pretrained')``)."""
    CheckpointLoader.register_scheme('', load_from_local_safe, force=True)
