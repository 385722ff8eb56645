"""What the fixed networks and supernets of both spaces share as OpenMMLab
backbones: a stem, then ``blocks`` (an ``nn.Sequential`` of stages) whose
outputs ``out_indices`` pick, ``frozen_stages`` (mmdet's convention: -1
nothing, 0 the stem, k the stem and ``blocks.0 .. blocks.k-1``),
``norm_eval`` and a strict ``Pretrained`` init.

Only the stages up to the deepest of ``out_indices`` run. The stages past
it are built -- a classifier checkpoint still loads strictly into a
detector's backbone -- but no output uses them, so they are frozen
(``requires_grad=False``, eval mode): every trainable parameter receives a
gradient, as DDP without ``find_unused_parameters`` requires.

A class sets ``num_block_stages`` (``len(blocks)``) and defines
:meth:`stem_modules` (what ``frozen_stages=0`` freezes) and :meth:`_stem`
(the stem's forward)."""
from __future__ import annotations

from numbers import Integral

from torch.nn.modules.batchnorm import _BatchNorm


class StagedBackboneMixin:
    """``forward`` / ``train`` / ``init_weights`` and the ``out_indices`` /
    ``frozen_stages`` checks of a stem + ``blocks`` backbone (module doc);
    mixed in before ``BaseModule``."""
    num_block_stages: int
    # a class using the mixin defines ``stem_modules() -> list[nn.Module]``
    # and ``_stem(x) -> Tensor`` (module doc)

    @property
    def deepest_out_index(self) -> int:
        """The last stage that runs (the deepest of ``out_indices``)."""
        return max(self.out_indices)

    def forward(self, x):
        x = self._stem(x)
        outs = []
        for i, stage in enumerate(self.blocks[:self.deepest_out_index + 1]):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self):
        frozen = list(self.blocks[self.deepest_out_index + 1:])  # never run
        if self.frozen_stages >= 0:
            frozen += self.stem_modules()
            frozen += list(self.blocks[:self.frozen_stages])
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def init_weights(self):
        """As BaseModule, but a ``Pretrained`` init_cfg loads strictly.

        mmengine's ``PretrainedInit`` loads with ``strict=False`` and only
        logs what did not fit; here a wrong checkpoint is an error that lists
        the missing, unexpected and mis-shaped keys.
        """
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            from .checkpoint import load_pretrained, load_strict
            state = load_pretrained(cfg['checkpoint'], cfg.get('prefix'),
                                    cfg.get('map_location', 'cpu'))
            load_strict(self, state,
                        f"init_cfg checkpoint {cfg['checkpoint']!r}")
            self._is_init = True
            return
        super().init_weights()

    def _check_indices(self, out_indices, frozen_stages,
                       drop_path_rate: float = 0.):
        """Reject ``out_indices`` that are not an increasing sequence of
        distinct stage indices (outputs come in stage order, so any other
        order would pair them with the wrong neck inputs), a
        ``frozen_stages`` out of range and a ``drop_path_rate`` outside
        [0, 1)."""
        n = self.num_block_stages
        allowed = f'allowed: increasing distinct ints in 0..{n - 1}'
        if isinstance(out_indices, (str, bytes)) or not hasattr(
                out_indices, '__iter__'):
            raise ValueError(f'out_indices: {out_indices!r} is not a '
                             f'sequence; {allowed}, e.g. ({n - 1}, )')
        out_indices = list(out_indices)
        if not out_indices:
            raise ValueError(f'out_indices: empty; {allowed}')
        for i in out_indices:
            if isinstance(i, bool) or not isinstance(i, Integral) or \
                    i not in range(n):
                raise ValueError(f'out_indices: {i!r} is not a stage index; '
                                 f'allowed 0..{n - 1}')
        if out_indices != sorted(set(out_indices)):
            raise ValueError(f'out_indices: {tuple(out_indices)} has '
                             f'duplicates or is not increasing; {allowed} '
                             f'(e.g. {tuple(sorted(set(out_indices)))})')
        if frozen_stages not in range(-1, n + 1):
            raise ValueError(f'frozen_stages: {frozen_stages}; allowed '
                             f'-1..{n}')
        check_drop_path_rate(drop_path_rate)


def check_drop_path_rate(rate) -> float:
    """``rate`` if it is a number in [0, 1), else a ``ValueError``."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or \
            not 0 <= rate < 1:
        raise ValueError(f'drop_path_rate: {rate!r}; allowed a number in '
                         '[0, 1) (stochastic depth of the last block)')
    return float(rate)
