"""The meta network M of Eq. 4: which board path should teach alpha?

``rho_k = M(N(x, alpha_k) - N(x, alpha); theta)``: a network with one hidden
fully-connected layer of 1,000 units (§3.2, "implementation") applied to the
difference of the logits of a board path and of the sampled path on each
training image, a sigmoid giving a matching degree in (0, 1), averaged over
the images. The teacher is the board path of largest rho; rho also weighs
the distillation loss (Eq. 5) and is learnt through Eq. 6.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class MetaMatchingNetwork(nn.Module):
    """rho = mean_i sigmoid(fc2(relu(fc1(z_k,i - z_alpha,i)))).

    Args:
        num_classes: logit width C (the input size).
        hidden: hidden units (1,000 in the paper).
    """

    def __init__(self, num_classes: int, hidden: int = 1000):
        super().__init__()
        if num_classes < 1 or hidden < 1:
            raise ValueError(f'meta network: num_classes={num_classes}, '
                             f'hidden={hidden} must be >= 1')
        self.fc1 = nn.Linear(num_classes, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, 1)
        nn.init.normal_(self.fc2.weight, std=1e-3)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, logit_diff: torch.Tensor) -> torch.Tensor:
        """``logit_diff`` (K, m, C) -> rho (K,); (m, C) -> scalar."""
        out = torch.sigmoid(self.fc2(self.act(self.fc1(logit_diff))))
        return out.squeeze(-1).mean(-1)
