"""Architectures of the AttentiveNAS / AlphaNet search space.

The space (``supernet_config`` of AttentiveNAS and AlphaNet; reference
``alphanet_kshot.md`` §1.3): a 3x3/2 first conv, seven MBConv stages
``mb1 .. mb7`` and the MobileNetV3 head, each with its own choices::

    stage      width c              depth d  kernel k  expand t  stride  SE
    first_conv 16, 24               -        3         -         2       -
    mb1        16, 24               1-2      3, 5      1         1       no
    mb2        24, 32               3-5      3, 5      4, 5, 6   2       no
    mb3        32, 40               3-6      3, 5      4, 5, 6   2       yes
    mb4        64, 72               3-6      3, 5      4, 5, 6   2       no
    mb5        112, 120, 128        3-8      3, 5      4, 5, 6   1       yes
    mb6        192, 200, 208, 216   3-8      3, 5      6         2       yes
    mb7        216, 224             1-2      3, 5      6         1       yes
    last_conv  1792, 1984 (head's feature-mix width)
    resolution 192, 224, 256, 288

A subnet is ``{resolution, width[9], depth[7], kernel[7], expand[7]}`` --
kernel and expansion are per *stage*, shared by its blocks, as in
AttentiveNAS's ``set_active_subnet``. Its string form is::

    r192|w16.16.24.32.64.112.192.216.1792|d1.3.3.3.3.3.1|k3.3.3.3.3.3.3|e1.4.4.4.4.6.6

The released AlphaNet models A0-A6 (``configs/eval_alphanet_models.yml``)
are in :data:`ALPHANET_ARCHS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..arch import ArchError

FIELDS = ('r', 'w', 'd', 'k', 'e')
FIELD_NAMES = dict(r='resolution', w='width', d='depth', k='kernel',
                   e='expand')


@dataclass(frozen=True)
class AttentiveArch:
    """One subnet: input resolution, 9 widths (first conv, one per stage,
    last conv), and per stage depth, kernel size and expansion ratio."""
    resolution: int
    width: tuple[int, ...]
    depth: tuple[int, ...]
    kernel: tuple[int, ...]
    expand: tuple[int, ...]

    def __post_init__(self):
        for name in ('width', 'depth', 'kernel', 'expand'):
            object.__setattr__(self, name,
                               tuple(int(v) for v in getattr(self, name)))
        object.__setattr__(self, 'resolution', int(self.resolution))
        n = len(self.depth)
        if not (len(self.kernel) == len(self.expand) == n
                and len(self.width) == n + 2):
            raise ArchError(
                f'arch: {len(self.width)} widths, {len(self.depth)} depths, '
                f'{len(self.kernel)} kernels, {len(self.expand)} expands; '
                'allowed: n+2 widths and n of each of the others')

    @property
    def num_stages(self) -> int:
        return len(self.depth)

    def __str__(self) -> str:
        return format_attentive_arch(self)


def format_attentive_arch(arch: AttentiveArch) -> str:
    """The canonical string of ``arch`` (inverse of
    :func:`parse_attentive_arch`)."""
    join = lambda v: '.'.join(str(x) for x in v)  # noqa: E731
    return (f'r{arch.resolution}|w{join(arch.width)}|d{join(arch.depth)}|'
            f'k{join(arch.kernel)}|e{join(arch.expand)}')


def _ints(field_: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split('.'))
    except ValueError:
        raise ArchError(f'{FIELD_NAMES[field_]} field {field_}{text!r}: '
                        'expected integers separated by "."') from None


def parse_attentive_arch(text: 'str | AttentiveArch | dict',
                         space: 'AttentiveSpace | None' = None
                         ) -> AttentiveArch:
    """String (or named model, or AttentiveNAS-style dict with keys
    ``resolution, width, depth, kernel_size, expand_ratio``) -> arch;
    validated against ``space`` when given."""
    if isinstance(text, AttentiveArch):
        arch = text
    elif isinstance(text, dict):
        arch = _from_dict(text)
    elif not isinstance(text, str):
        raise ArchError(f'arch {text!r}: expected a string, a dict or an '
                        'AttentiveArch')
    elif text.strip().lower() in ALPHANET_ARCHS:
        arch = ALPHANET_ARCHS[text.strip().lower()]
    else:
        parts = text.strip().split('|')
        heads = [p[:1] for p in parts]
        if heads != list(FIELDS):
            raise ArchError(
                f'arch {text!r}: expected 5 "|"-separated fields '
                f'{"|".join(f + "..." for f in FIELDS)} (resolution, widths, '
                f'depths, kernels, expands), got {"|".join(parts)!r}; or a '
                f'named model: {", ".join(ALPHANET_ARCHS)}')
        vals = {f: _ints(f, p[1:]) for f, p in zip(FIELDS, parts)}
        if len(vals['r']) != 1:
            raise ArchError(f'resolution field r{parts[0][1:]!r}: one integer')
        arch = AttentiveArch(vals['r'][0], vals['w'], vals['d'], vals['k'],
                             vals['e'])
    if space is not None:
        space.check(arch)
    return arch


def _from_dict(cfg: dict) -> AttentiveArch:
    keys = dict(resolution='resolution', width='width', depth='depth',
                kernel_size='kernel', expand_ratio='expand', kernel='kernel',
                expand='expand')
    kw = {}
    for k, v in cfg.items():
        if k not in keys:
            continue
        kw[keys[k]] = v
    missing = {'resolution', 'width', 'depth', 'kernel', 'expand'} - set(kw)
    if missing:
        raise ArchError(f'arch dict: missing {", ".join(sorted(missing))}')
    return AttentiveArch(**kw)


def _t(v) -> tuple:
    return tuple(tuple(x) if isinstance(x, (list, tuple)) else x for x in v)


@dataclass(frozen=True)
class AttentiveSpace:
    """The choices of every gene (defaults: the paper's space, §1.3).

    ``stage_*`` hold one tuple of choices per MBConv stage; a stage whose
    only expansion is 1 uses depthwise-separable blocks (``mb1``).
    """
    resolutions: tuple = (192, 224, 256, 288)
    first_widths: tuple = (16, 24)
    stage_widths: tuple = ((16, 24), (24, 32), (32, 40), (64, 72),
                           (112, 120, 128), (192, 200, 208, 216), (216, 224))
    stage_depths: tuple = ((1, 2), (3, 4, 5), (3, 4, 5, 6), (3, 4, 5, 6),
                           (3, 4, 5, 6, 7, 8), (3, 4, 5, 6, 7, 8), (1, 2))
    stage_kernels: tuple = ((3, 5), ) * 7
    stage_expands: tuple = ((1, ), (4, 5, 6), (4, 5, 6), (4, 5, 6),
                            (4, 5, 6), (6, ), (6, ))
    stage_strides: tuple = (1, 2, 2, 2, 1, 2, 1)
    stage_se: tuple = (False, False, True, False, True, True, True)
    last_widths: tuple = (1792, 1984)
    final_expand: int = 6
    names: tuple = field(default=(), compare=False)

    def __post_init__(self):
        for name in ('resolutions', 'first_widths', 'last_widths',
                     'stage_strides', 'stage_se'):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ('stage_widths', 'stage_depths', 'stage_kernels',
                     'stage_expands'):
            object.__setattr__(self, name, _t(getattr(self, name)))
        n = len(self.stage_widths)
        for name in ('stage_depths', 'stage_kernels', 'stage_expands',
                     'stage_strides', 'stage_se'):
            if len(getattr(self, name)) != n:
                raise ArchError(f'space: {name} has {len(getattr(self, name))}'
                                f' stages, stage_widths has {n}')
        for s, ex in enumerate(self.stage_expands):
            if 1 in ex and len(ex) > 1:
                raise ArchError(f'space: stage mb{s + 1} expands {ex}: '
                                'expand 1 (depthwise-separable) must be the '
                                'stage\'s only choice')
        for s, ks in enumerate(self.stage_kernels):
            if any(k % 2 == 0 for k in ks):
                raise ArchError(f'space: stage mb{s + 1} kernels {ks}: odd '
                                'sizes only')
        object.__setattr__(self, 'names', self.gene_names())

    @classmethod
    def build(cls, space: 'AttentiveSpace | dict | None') -> 'AttentiveSpace':
        if space is None:
            return cls()
        if isinstance(space, AttentiveSpace):
            return space
        if isinstance(space, dict):
            return cls(**space)
        raise ArchError(f'space {space!r}: expected a dict or AttentiveSpace')

    @property
    def num_stages(self) -> int:
        return len(self.stage_widths)

    def gene_choices(self) -> list[tuple[int, ...]]:
        """Choices of every gene, in genome order: resolution, widths
        (first conv, stages, last conv), depths, kernels, expands."""
        return ([tuple(self.resolutions), tuple(self.first_widths)]
                + [tuple(c) for c in self.stage_widths]
                + [tuple(self.last_widths)]
                + [tuple(c) for c in self.stage_depths]
                + [tuple(c) for c in self.stage_kernels]
                + [tuple(c) for c in self.stage_expands])

    def gene_names(self) -> tuple[str, ...]:
        n = self.num_stages
        return (('resolution', 'width[0] (first_conv)')
                + tuple(f'width[{i}] (mb{i})' for i in range(1, n + 1))
                + (f'width[{n + 1}] (last_conv)', )
                + tuple(f'depth[{i}] (mb{i + 1})' for i in range(n))
                + tuple(f'kernel[{i}] (mb{i + 1})' for i in range(n))
                + tuple(f'expand[{i}] (mb{i + 1})' for i in range(n)))

    @staticmethod
    def values(arch: AttentiveArch) -> list[int]:
        return [arch.resolution, *arch.width, *arch.depth, *arch.kernel,
                *arch.expand]

    def from_values(self, vals: Sequence[int]) -> AttentiveArch:
        n = self.num_stages
        v = [int(x) for x in vals]
        return AttentiveArch(v[0], v[1:n + 3], v[n + 3:2 * n + 3],
                             v[2 * n + 3:3 * n + 3], v[3 * n + 3:4 * n + 3])

    def check(self, arch: AttentiveArch) -> None:
        """One clear error naming the first gene outside its choices."""
        if arch.num_stages != self.num_stages:
            raise ArchError(f'arch {arch}: {arch.num_stages} stages, the '
                            f'space has {self.num_stages}')
        for name, v, choices in zip(self.names, self.values(arch),
                                    self.gene_choices()):
            if v not in choices:
                raise ArchError(f'arch {arch}: {name}={v} not allowed; '
                                f'allowed: {", ".join(map(str, choices))}')

    def extreme(self, largest: bool = True) -> AttentiveArch:
        pick = max if largest else min
        return self.from_values([pick(c) for c in self.gene_choices()])


def _named(r, w, k, e, d) -> AttentiveArch:
    return AttentiveArch(r, w, d, k, e)


#: AlphaNet's released models (``configs/eval_alphanet_models.yml``);
#: A0-A4 and A6 are AttentiveNAS's archs, the A5s differ (AlphaNet#1).
ALPHANET_ARCHS = {
    'alphanet-a0': _named(192, (16, 16, 24, 32, 64, 112, 192, 216, 1792),
                          (3, 3, 3, 3, 3, 3, 3), (1, 4, 4, 4, 4, 6, 6),
                          (1, 3, 3, 3, 3, 3, 1)),
    'alphanet-a1': _named(224, (16, 16, 24, 32, 64, 112, 192, 216, 1984),
                          (3, 3, 3, 5, 3, 5, 3), (1, 4, 4, 4, 4, 6, 6),
                          (1, 3, 3, 3, 3, 3, 1)),
    'alphanet-a2': _named(224, (16, 16, 24, 32, 64, 112, 200, 224, 1984),
                          (3, 3, 3, 3, 3, 5, 3), (1, 4, 5, 4, 4, 6, 6),
                          (1, 3, 3, 3, 3, 4, 1)),
    'alphanet-a3': _named(224, (16, 16, 24, 32, 64, 112, 208, 224, 1984),
                          (3, 3, 3, 5, 3, 3, 3), (1, 4, 4, 4, 4, 6, 6),
                          (2, 3, 3, 4, 3, 5, 1)),
    'alphanet-a4': _named(256, (16, 16, 24, 32, 64, 112, 192, 216, 1984),
                          (3, 3, 3, 5, 3, 5, 3), (1, 4, 4, 5, 4, 6, 6),
                          (1, 3, 3, 4, 3, 5, 1)),
    'alphanet-a5-small': _named(256,
                                (16, 16, 24, 32, 64, 112, 208, 216, 1984),
                                (3, 3, 3, 3, 3, 5, 3), (1, 4, 4, 5, 4, 6, 6),
                                (1, 3, 3, 4, 4, 5, 1)),
    'alphanet-a5-base': _named(288,
                               (16, 16, 24, 32, 64, 112, 200, 216, 1984),
                               (3, 3, 5, 5, 3, 3, 3), (1, 4, 4, 4, 5, 6, 6),
                               (2, 3, 4, 3, 3, 5, 1)),
    'alphanet-a6': _named(288, (16, 16, 24, 32, 64, 112, 216, 224, 1984),
                          (3, 3, 3, 3, 3, 5, 3), (1, 4, 6, 5, 4, 6, 6),
                          (1, 3, 3, 4, 4, 6, 1)),
}

#: MFLOPs of the released models in the AlphaNet README (§1.4).
ALPHANET_MFLOPS = {'alphanet-a0': 203, 'alphanet-a1': 279, 'alphanet-a2': 317,
                   'alphanet-a3': 357, 'alphanet-a4': 444,
                   'alphanet-a5-small': 491, 'alphanet-a5-base': 596,
                   'alphanet-a6': 709}
