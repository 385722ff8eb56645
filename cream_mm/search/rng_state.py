"""The sampler generator's state in the ``state_dict`` (checkpoints,
resume, and the broadcast that keeps every rank drawing the same paths).

It is saved as a plain tensor entry ``rng_state``, not ``_extra_state``:
mmengine broadcasts every ``state_dict`` value with ``dist.broadcast`` after
``init_weights``, which needs tensors."""
from __future__ import annotations

import torch


class GeneratorStateMixin:
    """``self.generator`` (a ``torch.Generator``) saved and loaded as the
    state-dict entry ``rng_state`` of an ``nn.Module`` with no parameters or
    buffers; a strict load without it reports the key missing."""

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + 'rng_state'] = self.generator.get_state()

    def _load_rng_state(self, state_dict, prefix) -> bool:
        """Set the generator from ``state_dict``; False if it has no
        ``rng_state``."""
        key = prefix + 'rng_state'
        if key not in state_dict:
            return False
        self.generator.set_state(
            state_dict[key].detach().to('cpu', torch.uint8).clone())
        return True

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        if not self._load_rng_state(state_dict, prefix) and strict:
            missing_keys.append(prefix + 'rng_state')
