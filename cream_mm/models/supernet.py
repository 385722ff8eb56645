"""The hypernetwork N(A, W) of Cream (§3, Appendix A and C).

Every searched layer is a :class:`ChoiceLayer` holding one block per candidate
op, each built by :func:`~cream_mm.models.blocks.build_op` (the only block
code); the stem, the depthwise-separable ``blocks.0`` and the tail
``blocks.6`` are those of :class:`~cream_mm.models.cream_net.CreamNet`
(:class:`CreamStemMixin`), and searched layers are placed by the same
:func:`searched_layers`. A path therefore maps module-by-module onto a
``CreamNet``: ``blocks.s.i.candidates.<op>`` of the supernet is
``blocks.s.i`` of the child, and :meth:`CreamSupernet.export` copies each
chosen candidate into the child with ``load_state_dict(strict=True)``.

Spaces (:data:`SPACES`): ``'mbconv'`` (Table 8: k{3,5,7} x e{4,6} with SE, or
skip), ``'mbconv+res'`` (Table 9: + residual bottleneck) and
``'mbconv+res+conv'`` (Table 10: + plain conv k in {1,3,5}). ``skip`` is
never a stage's first layer (it would change width or stride). A path is an
:class:`~cream_mm.arch.Arch`; inside the search it is encoded as one op index
per layer of the space (:meth:`SearchSpace.encode` / :meth:`decode`), a
stage shorter than the maximum depth being padded with ``skip``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from ..arch import (CONV_OPS, MAX_STAGE_LAYERS, MBCONV_OPS, NUM_STAGES,
                    RES_OPS, SKIP, Arch, ArchError, format_arch, parse_arch,
                    validate)
from ..registry import register_model
from .blocks import DEFAULT_ACT, DEFAULT_NORM, build_op
from .cream_net import (DEFAULT_INIT, STAGE_CHANNELS, STAGE_STRIDES,
                        CreamNet, CreamStemMixin, searched_layers)

#: name -> (ops, default max depth per stage)
SPACES = {
    'mbconv': (MBCONV_OPS + (SKIP, ), 6),
    'mbconv+res': (MBCONV_OPS + (SKIP, ) + RES_OPS, 4),
    'mbconv+res+conv': (MBCONV_OPS + (SKIP, ) + RES_OPS + CONV_OPS, 4),
}


@dataclass(frozen=True)
class SearchSpace:
    """Geometry and op choices of a hypernetwork (one object, shared by the
    supernet, the sampler, the FLOPs table and the board).

    Args:
        name: a key of :data:`SPACES`.
        max_depths: maximum layers per searched stage (int or 5 ints);
            default of the space (6 for ``mbconv``, 4 for the extended ones).
        resolutions: input sizes to search over (tiny models, Table 8's
            note); ``None`` searches at the data's size (``input_size``).
        input_size: the input size used for FLOPs when a path has no
            resolution of its own.
    """
    name: str = 'mbconv'
    max_depths: tuple[int, ...] | int | None = None
    resolutions: tuple[int, ...] | None = None
    input_size: int = 224
    stage_channels: tuple[int, ...] = STAGE_CHANNELS
    stage_strides: tuple[int, ...] = STAGE_STRIDES
    ops: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        if self.name not in SPACES:
            raise ArchError(f'space={self.name!r}: allowed '
                            f'{", ".join(SPACES)}')
        ops, default_depth = SPACES[self.name]
        depths = self.max_depths if self.max_depths is not None \
            else default_depth
        if isinstance(depths, int):
            depths = (depths, ) * NUM_STAGES
        depths = tuple(int(d) for d in depths)
        if len(depths) != NUM_STAGES or min(depths) < 1 or \
                max(depths) > MAX_STAGE_LAYERS:
            raise ArchError(f'max_depths={self.max_depths!r}: give one int '
                            f'in 1..{MAX_STAGE_LAYERS} or {NUM_STAGES} of '
                            'them')
        res = self.resolutions
        if res is not None:
            res = tuple(int(r) for r in res)
            if not res or any(r < 32 or r % 32 for r in res):
                raise ArchError(f'resolutions={self.resolutions!r}: '
                                'multiples of 32, at least 32')
        object.__setattr__(self, 'max_depths', depths)
        object.__setattr__(self, 'resolutions', res)
        object.__setattr__(self, 'stage_channels', tuple(self.stage_channels))
        object.__setattr__(self, 'stage_strides', tuple(self.stage_strides))
        object.__setattr__(self, 'ops', ops)

    @classmethod
    def build(cls, space: 'SearchSpace | dict | str') -> 'SearchSpace':
        if isinstance(space, SearchSpace):
            return space
        if isinstance(space, str):
            return cls(space)
        if isinstance(space, dict):
            space = dict(space)
            space.setdefault('name', space.pop('type', 'mbconv'))
            return cls(**space)
        raise ArchError(f'space: expected a name, dict or SearchSpace, got '
                        f'{type(space).__name__}')

    @property
    def num_layers(self) -> int:
        return sum(self.max_depths)

    def layers(self) -> Iterator[tuple[int, int, int, int, int]]:
        """``(stage, index, cin, cout, stride)`` of every searched layer."""
        return searched_layers(self.max_depths, self.stage_channels,
                               self.stage_strides)

    def layer_ops(self, index: int) -> tuple[str, ...]:
        """Ops allowed at layer ``index`` of a stage (no skip at index 0)."""
        return tuple(o for o in self.ops if index > 0 or o != SKIP)

    def encode(self, arch: Arch | str) -> tuple[tuple[int, ...], int]:
        """Arch -> (op index per layer, resolution or 0). Validates."""
        arch = parse_arch(arch)
        validate(arch, self.ops, self.max_depths)
        if (self.resolutions is not None and arch.resolution is not None
                and arch.resolution not in self.resolutions):
            raise ArchError(f'resolution {arch.resolution}: this space '
                            f'searches {self.resolutions}')
        code = []
        for ops, depth in zip(arch.stages, self.max_depths):
            padded = tuple(ops) + (SKIP, ) * (depth - len(ops))
            code += [self.ops.index(o) for o in padded]
        return tuple(code), arch.resolution or 0

    def decode(self, code: Sequence[int], resolution: int = 0) -> Arch:
        """(op indices, resolution) -> Arch with trailing skips dropped."""
        code = [int(c) for c in code]
        if len(code) != self.num_layers:
            raise ArchError(f'path code has {len(code)} layers, space has '
                            f'{self.num_layers}')
        stages, k = [], 0
        for depth in self.max_depths:
            ops = [self.ops[c] for c in code[k:k + depth]]
            k += depth
            while ops and ops[-1] == SKIP:
                ops.pop()
            stages.append(tuple(ops))
        return Arch(tuple(stages), int(resolution) or None)


class ChoiceLayer(nn.Module):
    """One searched layer: a block per candidate op, one active at a time."""

    def __init__(self, ops: Sequence[str], cin: int, cout: int, stride: int,
                 **block_kwargs):
        super().__init__()
        self.candidates = nn.ModuleDict(
            {op: build_op(op, cin, cout, stride, **block_kwargs)
             for op in ops})
        self.choice = next(iter(self.candidates))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.candidates[self.choice](x)


@register_model()
class CreamSupernet(CreamStemMixin, BaseModule):
    """The hypernetwork: stem, ``blocks.0``, five stages of choice layers,
    tail; forward runs the path set by :meth:`set_path` (or given).

    Args:
        space (str | dict | SearchSpace): the search space (see
            :class:`SearchSpace`); a dict may set ``max_depths``,
            ``resolutions``, ``input_size``.
        in_channels, out_indices, frozen_stages, norm_eval, norm_cfg,
        act_cfg, init_cfg: as :class:`~cream_mm.models.CreamNet`.
    """

    def __init__(self, space='mbconv', in_channels: int = 3,
                 out_indices: Sequence[int] = (6, ), frozen_stages: int = -1,
                 norm_eval: bool = False, norm_cfg: dict = DEFAULT_NORM,
                 act_cfg: dict = DEFAULT_ACT, init_cfg=DEFAULT_INIT):
        super().__init__(init_cfg=init_cfg)
        self.space = SearchSpace.build(space)
        self._check_indices(out_indices, frozen_stages)
        self.out_indices = tuple(out_indices)
        self.frozen_stages, self.norm_eval = frozen_stages, norm_eval
        self.in_channels = in_channels
        self._block_cfg = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        ds, tail = self._build_fixed_parts(in_channels, norm_cfg, act_cfg,
                                           self.space.stage_channels)
        stages = [[] for _ in self.space.max_depths]
        for s, i, cin, cout, stride in self.space.layers():
            stages[s - 1].append(ChoiceLayer(self.space.layer_ops(i), cin,
                                             cout, stride, **self._block_cfg))
        self.blocks = nn.Sequential(ds, *[nn.Sequential(*st) for st in stages],
                                    tail)
        self.out_channels = [ds[0].conv_pw.out_channels,
                             *self.space.stage_channels,
                             tail[0].conv.out_channels]
        self.path = self.space.decode(
            [0] * self.space.num_layers)  # the smallest-index path
        self.set_path(self.path)
        self._freeze_stages()

    def choice_layers(self) -> Iterator[tuple[int, int, ChoiceLayer]]:
        """``(stage, index, layer)`` of every choice layer (stage from 1)."""
        for s in range(1, len(self.space.max_depths) + 1):
            for i, layer in enumerate(self.blocks[s]):
                yield s, i, layer

    def set_path(self, arch: Arch | str) -> None:
        """Activate a path (trailing layers of a short stage become skip)."""
        arch = parse_arch(arch)
        code, _ = self.space.encode(arch)
        for (_, _, layer), c in zip(self.choice_layers(), code):
            layer.choice = self.space.ops[c]
        self.path = arch

    def forward(self, x: torch.Tensor, arch: Arch | str | None = None):
        if arch is not None:
            self.set_path(arch)
        return super().forward(x)

    def path_units(self, arch: Arch | str, resolution: int = 0
                   ) -> list[tuple[object, nn.Module]]:
        """The path as a chain of ``(key, module)`` units: stem, ``blocks.0``,
        one unit per searched layer of the space (``skip`` -> identity) and
        the tail. Running the modules in order equals :meth:`forward` (with
        ``out_indices`` ending at the tail). Two paths compute the same
        values up to the first unit whose key differs (same input), which
        :meth:`CreamSearch.shared_aux_logits` and the teacher's reuse of the
        student's features rely on; ``resolution`` is part of the first key.
        """
        code, _ = self.space.encode(arch)
        units = [(('stem', int(resolution)), self._stem),
                 ('blocks.0', self.blocks[0])]
        for l, ((_, _, layer), c) in enumerate(zip(self.choice_layers(),
                                                   code)):
            op = self.space.ops[c]
            units.append(((l, op), layer.candidates[op]))
        units.append(('tail', self.blocks[-1]))
        return units

    def path_modules(self, arch: Arch | str | None = None
                     ) -> Iterator[tuple[str, nn.Module]]:
        """``(child module name, supernet module)`` of every part of a path.

        The names are those of the exported :class:`CreamNet`; the modules
        are the supernet's (stem, ``blocks.0``, chosen candidates, tail).
        """
        arch = self.path if arch is None else parse_arch(arch)
        code, _ = self.space.encode(arch)
        yield 'conv_stem', self.conv_stem
        yield 'bn1', self.bn1
        yield 'blocks.0', self.blocks[0]
        for (s, i, layer), c in zip(self.choice_layers(), code):
            if i < len(arch.stages[s - 1]):
                yield f'blocks.{s}.{i}', layer.candidates[self.space.ops[c]]
        yield f'blocks.{len(self.blocks) - 1}', self.blocks[-1]

    def path_parameters(self, arch: Arch | str | None = None,
                        prefix: str = '') -> dict[str, nn.Parameter]:
        """Supernet parameter name -> parameter, for every weight of a path
        (used for the hypergradient of Eq. 6 through the whole path)."""
        ids = {id(p) for _, m in self.path_modules(arch)
               for p in m.parameters()}
        return {prefix + n: p for n, p in self.named_parameters()
                if id(p) in ids}

    def searched_modules(self) -> list[str]:
        """Names of the choice layers (per-op weights; K-shot K-folds
        their parameters)."""
        return [f'blocks.{s}.{i}' for s, i, _ in self.choice_layers()]

    def backbone_cfg(self, arch: Arch | str | None = None) -> dict:
        """Config of the exported :class:`CreamNet` of ``arch``."""
        arch = self.path if arch is None else parse_arch(arch)
        cfg = dict(type='CreamNet', arch=format_arch(arch))
        if self.space.stage_channels != STAGE_CHANNELS:
            cfg['stage_channels'] = self.space.stage_channels
        if self.space.stage_strides != STAGE_STRIDES:
            cfg['stage_strides'] = self.space.stage_strides
        return cfg

    def export(self, arch: Arch | str | None = None, **cream_net_kwargs
               ) -> CreamNet:
        """The path as a :class:`CreamNet` with the supernet's weights.

        Module by module ``load_state_dict(strict=True)``: the child's keys
        are exactly a ``CreamNet``'s, no key is rewritten.
        """
        arch = self.path if arch is None else parse_arch(arch)
        kwargs = dict(in_channels=self.in_channels,
                      stage_channels=self.space.stage_channels,
                      stage_strides=self.space.stage_strides,
                      **self._block_cfg)
        kwargs.update(cream_net_kwargs)
        child = CreamNet(arch, **kwargs)
        for name, module in self.path_modules(arch):
            child.get_submodule(name).load_state_dict(module.state_dict(),
                                                      strict=True)
        return child
