"""K-shot NAS's simplex-net pi (Su et al., ICML 2021, Eq. 6 / Eq. 11,
Fig. 2) and the channel-width regulariser r_c (Eq. 15-16).

pi maps a path to a code lambda on the simplex Delta^{K-1}: a two-layer MLP
on the architecture one-hot ("architecture branch") plus, when the space
searches widths, a two-layer MLP on the channel encoding ("channel
branch"); the two branches' logits are summed and a softmax over K gives
lambda. During warm-up (the first 5 epochs in the paper) every path uses
lambda = 1/K; the flag is a buffer, so checkpoints, resumes and exports
agree on it.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _mlp(cin: int, hidden: int, cout: int) -> nn.Sequential:
    """Linear-ReLU-Linear; the output layer starts at zero, so the first
    code after warm-up is the warm-up's 1/K (no jump in the merged
    weights; our choice, the paper does not say)."""
    mlp = nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(inplace=True),
                        nn.Linear(hidden, cout))
    nn.init.zeros_(mlp[2].weight)
    nn.init.zeros_(mlp[2].bias)
    return mlp


class SimplexNet(nn.Module):
    """lambda = softmax(MLP_a(a) + MLP_c(c)) over ``num_shots`` (Eq. 6 / 11).

    Args:
        num_shots: K.
        arch_dim: length of the architecture one-hot
            (``sampler.encode(arch)[0]``).
        channel_dim: length of the channel encoding
            (``sampler.encode(arch)[1]``); 0 = no channel branch.
        hidden: hidden width of each branch (the paper: "a two-layer MLP",
            width not stated).
    """

    def __init__(self, num_shots: int, arch_dim: int, channel_dim: int = 0,
                 hidden: int = 64):
        super().__init__()
        if int(num_shots) < 1:
            raise ValueError(f'num_shots={num_shots}: must be >= 1')
        if int(arch_dim) < 1:
            raise ValueError(f'arch_dim={arch_dim}: must be >= 1')
        self.num_shots = int(num_shots)
        self.arch_branch = _mlp(int(arch_dim), hidden, self.num_shots)
        self.channel_branch = (_mlp(int(channel_dim), hidden, self.num_shots)
                               if channel_dim else None)
        self.register_buffer('warmup', torch.ones((), dtype=torch.bool))

    def uniform(self, n: int | None = None) -> torch.Tensor:
        """lambda = 1/K (warm-up), shape (K,) or (n, K)."""
        w = self.arch_branch[0].weight
        lam = torch.full((self.num_shots, ), 1. / self.num_shots,
                         dtype=w.dtype, device=w.device)
        return lam if n is None else lam.expand(n, -1)

    def forward(self, arch_code: torch.Tensor,
                channel_code: torch.Tensor | None = None) -> torch.Tensor:
        """Codes lambda, shape (..., K); uniform while ``warmup`` is set."""
        if bool(self.warmup):
            return self.uniform(None if arch_code.dim() == 1
                                else arch_code.shape[0])
        w = self.arch_branch[0].weight
        logits = self.arch_branch(arch_code.to(w))
        if self.channel_branch is not None:
            if channel_code is None:
                raise ValueError('SimplexNet has a channel branch: give the '
                                 'channel encoding')
            logits = logits + self.channel_branch(channel_code.to(w))
        return logits.softmax(-1)


def channel_regulariser(codes: torch.Tensor, widths: torch.Tensor,
                        threshold: float, temperature: float = 0.3
                        ) -> torch.Tensor:
    """r_c of Eq. 15-16 over the codes of ``n`` paths that share one
    architecture and differ in width.

    ``codes``: (n, K) simplex codes lambda_i; ``widths``: (n, D) channel
    encodings c_i (any device: the positive pairs are found there and
    indexed on the codes' device). Positives are the ordered pairs (i, k), i != k, with
    ``d(c_i, c_k) = ||c_i - c_k||_1 < threshold`` (the paper's m); for each

        P(c_i | c_k) = exp(l_i.l_k / tau) / (exp(l_i.l_k / tau)
                       + sum_{j != i, k} exp(l_i.l_j / tau))

    (Eq. 15; the anchor i itself is left out of the sum) and
    ``r_c = mean over positive pairs of -log P(c_i | c_k)`` (Eq. 16). No
    positive pair (or n < 2): 0. The paper gives tau = 0.3; how the pairs
    are drawn and the threshold m are not stated in the paper and not
    checked against public code (there is none).
    """
    n = codes.shape[0]
    if n < 2:
        return codes.sum() * 0.
    # the pairs come from the encodings alone: found where ``widths`` lie
    # (the sampler's host tensors), only their indices go to the codes
    dist = torch.cdist(widths.double(), widths.double(), p=1)
    pos = (dist < threshold) & ~torch.eye(n, dtype=torch.bool,
                                          device=widths.device)
    if not pos.any():
        return codes.sum() * 0.
    rows, cols = (i.to(codes.device) for i in pos.nonzero(as_tuple=True))
    eye = torch.eye(n, dtype=torch.bool, device=codes.device)
    sim = codes @ codes.T / temperature  # (n, n): l_i . l_j / tau
    sim = sim.masked_fill(eye, float('-inf'))  # the anchor is no candidate
    # log P(c_i|c_k) = s_ik - logsumexp_{j != i} s_ij: the positive plus
    # every other j is exactly the row's logsumexp without the diagonal
    log_p = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    return -log_p[rows, cols].mean()


__all__ = ['SimplexNet', 'channel_regulariser']
