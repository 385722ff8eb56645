"""The architecture notation of cream_mm: parse, format and validate paths.

A Cream architecture (a path of the hypernetwork, Appendix A / Table 8 of the
paper) fixes the operation of every searched layer of the five searched stages;
the stem, the depthwise-separable first block and the tail are not searched.
The notation is meant to be read and written by hand::

    k3e4|k5e6*2|k5e6,k3e6,k5e6|k5e6*4|k5e6*3        # Cream-S
    k3e4|k5e6,skip|k5e6*2|k3e6|k5e6@64              # a path at 64 px input

* ``|`` separates the five searched stages (channels 24, 40, 80, 96, 192);
* ``,`` separates the layers of one stage; ``OP*N`` repeats an op N times;
* an optional ``@R`` suffix gives the input resolution (a search dimension
  for tiny models);
* ops: ``k{3,5,7}e{4,6}`` (MBConv with SE, kernel k, expansion e), ``skip``
  (identity; never a stage's first layer), ``res`` (residual bottleneck, k3,
  Appendix C Table 9) and ``conv1``/``conv3``/``conv5`` (plain conv, Table 10).

:func:`format_arch` prints the canonical form (repeats folded), so
``format_arch(parse_arch(s))`` is canonical and
``parse_arch(format_arch(a)) == a`` for every :class:`Arch`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

# op name -> (kernel, expansion) of the MBConv ops; index order of the release
MBCONV_OPS = ('k3e4', 'k3e6', 'k5e4', 'k5e6', 'k7e4', 'k7e6')
SKIP = 'skip'
RES_OPS = ('res', )
CONV_OPS = ('conv1', 'conv3', 'conv5')
ALL_OPS = MBCONV_OPS + (SKIP, ) + RES_OPS + CONV_OPS

NUM_STAGES = 5
#: Most layers one stage may have, in an arch string or a search space
#: (the paper's spaces hold 4 or 6).
MAX_STAGE_LAYERS = 32
_TOKEN = re.compile(r'^(?P<op>[a-z0-9]+)(\*(?P<rep>\d+))?$')


class ArchError(ValueError):
    """A malformed or invalid architecture string or path."""


def op_kernel_expansion(op: str) -> tuple[int, int]:
    """(kernel, expansion) of an MBConv op name such as ``k5e6``."""
    if op not in MBCONV_OPS:
        raise ArchError(f'op {op!r} is not an MBConv op; allowed: '
                        f'{", ".join(MBCONV_OPS)}')
    return int(op[1]), int(op[3])


@dataclass(frozen=True)
class Arch:
    """A path: ``stages[s][i]`` is the op of layer i of searched stage s."""
    stages: tuple[tuple[str, ...], ...]
    resolution: int | None = None

    def __post_init__(self):
        stages = tuple(tuple(s) for s in self.stages)
        object.__setattr__(self, 'stages', stages)
        validate(self)

    @property
    def depths(self) -> tuple[int, ...]:
        """Number of non-skip layers per stage."""
        return tuple(sum(op != SKIP for op in s) for s in self.stages)

    def __str__(self) -> str:
        return format_arch(self)

    def with_resolution(self, resolution: int | None) -> 'Arch':
        return Arch(self.stages, resolution)


def validate(arch: Arch, allowed_ops: Iterable[str] | None = None,
             max_depths: Sequence[int] | None = None) -> None:
    """Raise :class:`ArchError` naming the offending field if ``arch`` is bad.

    ``allowed_ops`` and ``max_depths`` restrict to a search space.
    """
    allowed = tuple(allowed_ops) if allowed_ops is not None else ALL_OPS
    if len(arch.stages) != NUM_STAGES:
        raise ArchError(f'arch has {len(arch.stages)} stages; a Cream arch '
                        f'has exactly {NUM_STAGES} stages separated by "|"')
    for s, ops in enumerate(arch.stages, 1):
        if not ops:
            raise ArchError(f'stage {s} is empty; every stage needs at '
                            'least one layer')
        if len(ops) > MAX_STAGE_LAYERS:
            raise ArchError(f'stage {s} has {len(ops)} layers; allowed '
                            f'1..{MAX_STAGE_LAYERS}')
        if max_depths is not None and len(ops) > max_depths[s - 1]:
            raise ArchError(f'stage {s} has {len(ops)} layers; this space '
                            f'allows at most {max_depths[s - 1]}')
        for i, op in enumerate(ops):
            if op not in allowed:
                raise ArchError(f'stage {s} layer {i}: unknown op {op!r}; '
                                f'allowed: {", ".join(allowed)}')
        if ops[0] == SKIP:
            raise ArchError(f'stage {s} layer 0: "skip" is not allowed as '
                            'the first layer of a stage (it changes width '
                            'or stride)')
    if arch.resolution is not None and (
            not isinstance(arch.resolution, int) or arch.resolution < 32
            or arch.resolution % 32):
        raise ArchError(f'resolution {arch.resolution!r}: must be a '
                        'multiple of 32 and at least 32')


def parse_arch(text: str | Arch) -> Arch:
    """Parse the notation above (or a released model name) into an Arch."""
    if isinstance(text, Arch):
        return text
    if not isinstance(text, str):
        raise ArchError(f'arch must be a string, got {type(text).__name__}')
    key = text.strip().lower()
    if key in RELEASED_ALIASES:
        name = RELEASED_ALIASES[key]
        return Arch(parse_arch(RELEASED[name][0]).stages, RELEASED[name][1])
    body, resolution = key, None
    if '@' in key:
        body, _, res = key.rpartition('@')
        if not res.isdigit():
            raise ArchError(f'resolution {res!r} after "@" must be an '
                            'integer (e.g. "@224")')
        resolution = int(res)
    stages_txt = body.split('|')
    if len(stages_txt) != NUM_STAGES:
        raise ArchError(
            f'arch {text!r} has {len(stages_txt)} stages; expected '
            f'{NUM_STAGES} separated by "|", or a released name: '
            f'{", ".join(sorted(RELEASED_ALIASES))}')
    stages = []
    for s, stage_txt in enumerate(stages_txt, 1):
        ops = []
        for tok in stage_txt.split(','):
            tok = tok.strip().replace(' ', '')
            m = _TOKEN.match(tok)
            if not m or m.group('op') not in ALL_OPS:
                raise ArchError(
                    f'stage {s}: bad token {tok!r}; a token is OP or OP*N '
                    f'with OP one of {", ".join(ALL_OPS)}')
            rep = int(m.group('rep') or 1)
            if rep < 1:
                raise ArchError(f'stage {s}: repeat count in {tok!r} must '
                                'be at least 1')
            if len(ops) + rep > MAX_STAGE_LAYERS:
                raise ArchError(
                    f'stage {s}: {tok!r} makes {len(ops) + rep} layers; a '
                    f'stage has 1..{MAX_STAGE_LAYERS} (the paper\'s spaces '
                    'hold at most 6)')
            ops += [m.group('op')] * rep
        stages.append(tuple(ops))
    return Arch(tuple(stages), resolution)


def _fold(ops: Sequence[str]) -> str:
    out, i = [], 0
    while i < len(ops):
        j = i
        while j < len(ops) and ops[j] == ops[i]:
            j += 1
        out.append(ops[i] if j - i == 1 else f'{ops[i]}*{j - i}')
        i = j
    return ','.join(out)


def format_arch(arch: Arch) -> str:
    """Canonical string of ``arch`` (repeats folded, ``@R`` if set)."""
    body = '|'.join(_fold(s) for s in arch.stages)
    return body if arch.resolution is None else f'{body}@{arch.resolution}'


# The released models (spec table, README §2): arch string, input size.
RELEASED = {
    'cream-14m': ('k3e4|k5e6*2|k5e6*2|k3e6|k5e6', 64),
    'cream-43m': ('k3e4|k5e6,k3e6|k5e6,k3e6|k5e6*3|k5e6*2', 96),
    'cream-114m': ('k3e4|k5e6*2|k5e6*2|k5e6*3|k5e6*2', 160),
    'cream-287m': ('k3e4|k5e6*2|k5e6,k3e6,k5e6|k5e6*4|k5e6*3', 224),
    'cream-481m': ('k5e6,k7e4,k5e6,k3e6|k5e6,k5e4,k5e6,k3e4|'
                   'k5e6*3,k3e6*2|k5e6*4|k5e6*4', 224),
    'cream-604m': ('k5e6*2,k5e4,k5e6*2|k5e6,k5e4,k5e6,k5e4,k5e6|'
                   'k5e6,k5e4,k5e6,k5e4,k5e6|k5e6*2,k5e4*2,k5e6*2|'
                   'k5e6*2,k5e4,k5e6*3', 224),
}
RELEASED_ALIASES = {name: name for name in RELEASED}
RELEASED_ALIASES.update({'cream-s': 'cream-287m', 'cream-m': 'cream-481m',
                         'cream-l': 'cream-604m'})
