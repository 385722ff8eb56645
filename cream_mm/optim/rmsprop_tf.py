"""TensorFlow-style RMSprop, the optimiser of the retraining recipe (§4.1).

Differences from ``torch.optim.RMSprop`` (as in the authors' release, timm's
``RMSpropTF``): epsilon inside the square root, the square average starts at
1, and the learning rate multiplies the momentum buffer's update::

    v <- alpha * v + (1 - alpha) * g^2
    b <- momentum * b + lr * g / sqrt(v + eps)
    w <- w - b
"""
import torch
from mmengine.registry import OPTIMIZERS
from torch.optim import Optimizer


@OPTIMIZERS.register_module()
class RMSpropTF(Optimizer):
    """RMSprop with TF semantics; weight decay is added to the gradient."""

    def __init__(self, params, lr=0.01, alpha=0.9, eps=1e-3, momentum=0.9,
                 weight_decay=0.):
        for name, v in dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum,
                            weight_decay=weight_decay).items():
            if v < 0:
                raise ValueError(f'RMSpropTF: {name}={v} must be >= 0')
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps,
                                      momentum=momentum,
                                      weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue
                g = p.grad
                if group['weight_decay']:
                    g = g.add(p, alpha=group['weight_decay'])
                state = self.state[p]
                if not state:
                    state['square_avg'] = torch.ones_like(p)
                    state['momentum_buffer'] = torch.zeros_like(p)
                v = state['square_avg']
                v.mul_(group['alpha']).addcmul_(g, g, value=1 - group['alpha'])
                step = g / (v + group['eps']).sqrt()
                if group['momentum'] > 0:
                    b = state['momentum_buffer']
                    b.mul_(group['momentum']).add_(step, alpha=group['lr'])
                    p.sub_(b)
                else:
                    p.sub_(step, alpha=group['lr'])
        return loss
