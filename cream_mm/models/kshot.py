"""K-shot supernets (Su et al., "K-shot NAS", ICML 2021, §2.2-§3).

:class:`KShotSupernet` wraps any supernet of the search protocol
(:class:`~cream_mm.search.protocol.Supernet`, e.g. ``CreamSupernet``) and
turns every parameter under ``supernet.searched_modules()`` into a
dictionary of K copies -- one ``Parameter`` of shape ``(K, *shape)`` in
place of the original, so state-dict keys are the base's own. A path with
code lambda (the :class:`~cream_mm.models.simplex_net.SimplexNet` output)
runs with the merged weights ``theta~ = sum_k lambda_k theta_k`` (Eq. 4/5),
built BEFORE the forward for the parameters the path uses, and the base
runs through :func:`torch.func.functional_call` with them: the forward
creates no activation a one-shot forward would not (Tab. 1's "no
additional feature map"). Stem, tail and all BatchNorm buffers are single
shared copies.
"""
from __future__ import annotations

import copy
from collections import defaultdict

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch.func import functional_call

from ..registry import register_model
from .autocast import no_autocast
from .simplex_net import SimplexNet


def merge_shots(code: torch.Tensor, stack: torch.Tensor) -> torch.Tensor:
    """``sum_k code_k * stack[k]`` (Eq. 4) as one (K) x (K, N) product: no
    K-sized temporary. In the weights' dtype also under autocast (merged
    BatchNorm affine weights must stay fp32 like the unmerged ones)."""
    k = stack.shape[0]
    with no_autocast(stack.device.type):
        return (code.to(stack.dtype) @ stack.reshape(k, -1)).view(
            stack.shape[1:])


def _owner(root: nn.Module, name: str) -> tuple[nn.Module, str]:
    mod, _, attr = name.rpartition('.')
    return (root.get_submodule(mod) if mod else root), attr


@register_model()
class KShotSupernet(BaseModule):
    """K copies of the searched weights of a supernet, merged per path.

    Args:
        supernet (dict): config of the base supernet (any space of the
            search protocol).
        num_shots: K (the paper's default 8).
        simplex (dict): :class:`SimplexNet` options (``hidden``).
        encoder (dict): options of the private sampler that encodes paths
            for the simplex-net (``build_sampler`` of the base; only its
            ``encode`` is used): ``num_classes`` (FLOPs table only).
    """

    def __init__(self, supernet: dict, num_shots: int = 8,
                 simplex: dict | None = None, encoder: dict | None = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if int(num_shots) < 1:
            raise ValueError(f'num_shots={num_shots}: must be >= 1')
        self.num_shots = int(num_shots)
        self._supernet_cfg = copy.deepcopy(supernet)
        self.supernet = MODELS.build(supernet)
        from ..search.samplers import build_sampler  # (search imports us)
        enc_cfg = dict(num_classes=1000)
        enc_cfg.update(encoder or {})
        self.__dict__['_encoder'] = build_sampler(
            self.supernet, enc_cfg.pop('num_classes'), seed=0, **enc_cfg)
        arch_code, chan_code = self._encoder.encode(
            self._encoder.extreme(largest=True))
        self.simplex = SimplexNet(
            self.num_shots, arch_code.numel(),
            chan_code.numel() if chan_code is not None else 0,
            **(simplex or {}))
        self.shot_names = self._searched_parameter_names()
        self._stack_copies()
        self._arch = None
        self._memory_format = None

    # --------------------------------------------------------- building
    def _searched_parameter_names(self) -> list[str]:
        names, seen = [], set()
        for mod in self.supernet.searched_modules():
            for n, p in self.supernet.get_submodule(mod).named_parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    names.append(f'{mod}.{n}')
        if not names:
            raise ValueError('KShotSupernet: searched_modules() of '
                             f'{type(self.supernet).__name__} hold no '
                             'parameters')
        return names

    def _stack_copies(self) -> None:
        """Copy 0 is the base's weight; copies 1..K-1 are re-drawn by the
        modules' own ``reset_parameters`` (independent, not identical);
        :meth:`init_weights` later redraws all K with the base's init_cfg."""
        copies = {n: [self.supernet.get_parameter(n).detach().clone()]
                  for n in self.shot_names}
        mods = [m for name in self.supernet.searched_modules()
                for m in self.supernet.get_submodule(name).modules()
                if hasattr(m, 'reset_parameters') and
                any(True for _ in m.parameters(recurse=False))]
        for _ in range(1, self.num_shots):
            for m in mods:
                m.reset_parameters()
            for n in self.shot_names:
                copies[n].append(self.supernet.get_parameter(n).detach()
                                 .clone())
        for n in self.shot_names:
            mod, attr = _owner(self.supernet, n)
            old = mod._parameters[attr]
            mod._parameters[attr] = nn.Parameter(
                torch.stack(copies[n]), requires_grad=old.requires_grad)

    def init_weights(self) -> None:
        """Each of the K copies initialised independently by the base's own
        scheme (its ``init_cfg``, run K times on a single-copy twin); the
        shared parts get the first run's values."""
        if self._is_init:
            return
        twin = MODELS.build(self._supernet_cfg)
        shots = set(self.shot_names)
        with torch.no_grad():
            for k in range(self.num_shots):
                _init_quietly(twin)
                for n in self.shot_names:
                    self.supernet.get_parameter(n)[k].copy_(
                        twin.get_parameter(n))
                if k == 0:
                    for n, p in twin.named_parameters():
                        if n not in shots:
                            self.supernet.get_parameter(n).copy_(p)
                    for n, b in twin.named_buffers():
                        self.supernet.get_buffer(n).copy_(b)
        for m in self.modules():
            if isinstance(m, BaseModule):
                m._is_init = True

    def to(self, *args, **kwargs):
        """As ``nn.Module.to``; a ``memory_format`` applies to the 4-D
        (single-copy) weights only -- the stacked ``(K, ...)`` ones have no
        channels-last layout; merged weights follow the input's."""
        fmt = kwargs.pop('memory_format', None)
        out = super().to(*args, **kwargs)
        if fmt is not None:
            shots = set(self.shot_names)
            for n, p in self.named_parameters():
                if p.dim() == 4 and n.partition('.')[2] not in shots:
                    p.data = p.data.contiguous(memory_format=fmt)
            self._memory_format = fmt
        return out

    # ------------------------------------------------------------ paths
    @property
    def encoder(self):
        """The sampler whose ``encode`` feeds the simplex-net."""
        return self._encoder

    @property
    def space(self):
        """The base's search space (Cream tooling)."""
        return self.supernet.space

    def code(self, arch) -> torch.Tensor:
        """lambda of ``arch`` from the simplex-net (1/K in warm-up)."""
        a, c = self._encoder.encode(arch)
        w = self.simplex.arch_branch[0].weight
        return self.simplex(a.to(w.device), None if c is None
                            else c.to(w.device))

    def path_shot_names(self, arch) -> list[str]:
        """Names of the K-fold parameters ``arch`` uses (all of them when
        the base cannot tell: no ``path_parameters``)."""
        if not hasattr(self.supernet, 'path_parameters'):
            return list(self.shot_names)
        used = self.supernet.path_parameters(arch)
        return [n for n in self.shot_names if n in used]

    def merged_parameters(self, arch, code: torch.Tensor,
                          detach_shots: bool = False
                          ) -> dict[str, torch.Tensor]:
        """Base parameter name -> ``sum_k code_k theta_k`` for the path's
        K-fold parameters (Eq. 4). ``detach_shots``: no gradient into the K
        copies (the simplex-net step, Eq. 8)."""
        out = {}
        for n in self.path_shot_names(arch):
            stack = self.supernet.get_parameter(n)
            out[n] = merge_shots(code, stack.detach() if detach_shots
                                 else stack)
        return out

    def set_path(self, arch) -> None:
        self.supernet.set_path(arch)
        self._arch = arch

    def forward(self, x: torch.Tensor, arch=None,
                code: torch.Tensor | None = None,
                detach_shots: bool = False):
        """Features of ``arch`` (default: the active path) with the weights
        merged by ``code`` (default: the simplex-net's lambda)."""
        if arch is None:
            arch = self._arch if self._arch is not None else \
                self.supernet.path
        if code is None:
            code = self.code(arch)
        merged = self.merged_parameters(arch, code, detach_shots)
        return functional_call(self.supernet, merged, (x, ), dict(arch=arch))

    # ----------------------------------------------------------- export
    @torch.no_grad()
    def merged_state(self, arch, code: torch.Tensor | None = None):
        """The base with single-copy weights merged for ``arch``: a context
        manager (see :meth:`export`)."""
        code = self.code(arch) if code is None else code
        return _Merged(self.supernet, self.merged_parameters(arch, code))

    def export(self, arch, code: torch.Tensor | None = None, **kwargs
               ) -> nn.Module:
        """``arch`` as the base's fixed backbone carrying the merged weights
        (lambda from the simplex-net unless ``code`` is given)."""
        with torch.no_grad(), self.merged_state(arch, code):
            return self.supernet.export(arch, **kwargs)

    def backbone_cfg(self, arch) -> dict:
        return self.supernet.backbone_cfg(arch)

    def searched_modules(self) -> list[str]:
        return self.supernet.searched_modules()


def _init_quietly(module: BaseModule) -> None:
    """``module.init_weights()`` again, without mmengine's per-parameter
    init report (it is logged only by a top-level call)."""
    info = defaultdict(dict)
    for p in module.parameters():
        info[p]['init_info'] = ''
        info[p]['tmp_mean_value'] = p.data.mean().cpu()
    for m in module.modules():
        m._params_init_info = info
        if isinstance(m, BaseModule):
            m._is_init = False
    try:
        module.init_weights()
    finally:
        for m in module.modules():
            del m._params_init_info


class _Merged:
    """Temporarily replaces K-fold parameters by merged single copies."""

    def __init__(self, base: nn.Module, merged: dict):
        self.base, self.merged, self.saved = base, merged, {}

    def __enter__(self):
        for n, t in self.merged.items():
            mod, attr = _owner(self.base, n)
            self.saved[n] = mod._parameters[attr]
            mod._parameters[attr] = nn.Parameter(t.detach(),
                                                 requires_grad=False)
        return self.base

    def __exit__(self, *exc):
        for n, p in self.saved.items():
            mod, attr = _owner(self.base, n)
            mod._parameters[attr] = p
        return False


__all__ = ['KShotSupernet', 'merge_shots']
