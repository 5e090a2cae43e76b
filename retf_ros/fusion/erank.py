"""Effective rank (Roy & Vetterli 2007), the rank-gain measures built on it, and the count of
inactive channels (feature collapse at its extreme).

The recipe reproduces the published numbers of the RTF authors (docs/method.md section 2):
singular values of Z as it is (not mean-centred unless asked), values <= 1e-12 dropped,
p = s / (sum s + 1e-7), H = -sum p ln(p + 1e-7), erank = exp(H).
"""
from __future__ import annotations

import torch

_DROP_BELOW = 1e-12
_EPS = 1e-7


@torch.no_grad()
def singular_values(z: torch.Tensor) -> torch.Tensor:
    """Singular values of each (T, C) matrix of z (..., T, C), in float64, ascending.

    Fast path: eigenvalues of the smaller Gram matrix (T x T or C x C). Eigenvalues at the
    Gram path's round-off floor (relative to the largest) are set to 0 so that a numerically
    rank-deficient matrix has the same spectrum as a direct SVD would give.
    """
    z = z.detach().to(torch.float64)
    t, c = z.shape[-2], z.shape[-1]
    gram = z @ z.transpose(-1, -2) if t <= c else z.transpose(-1, -2) @ z
    eig = torch.linalg.eigvalsh(gram).clamp_(min=0.0)
    floor = eig[..., -1:] * (max(t, c) * torch.finfo(torch.float64).eps)
    eig = torch.where(eig > floor, eig, torch.zeros_like(eig))
    return eig.sqrt()


def entropy_effective_rank(s: torch.Tensor) -> torch.Tensor:
    """erank from singular values s (..., r) (any order, zeros allowed) -> (...)."""
    s = torch.where(s > _DROP_BELOW, s, torch.zeros_like(s))
    p = s / (s.sum(dim=-1, keepdim=True) + _EPS)
    entropy = -(p * torch.log(p + _EPS)).sum(dim=-1)
    return torch.exp(entropy)


@torch.no_grad()
def effective_rank(z: torch.Tensor, centered: bool = False) -> torch.Tensor:
    """Effective rank of token matrices.

    z: (..., T, C) tokens x channels. Returns (...) float32 in [1, min(T, C)] (an all-zero
    matrix has no singular value above 1e-12, so H = 0 and erank = 1).
    ``centered`` subtracts the per-channel mean over T first (state which convention a
    reported number uses).
    Never under autograd: gradients of singular values explode at repeated values.
    """
    if z.dim() < 2:
        raise ValueError(f"effective_rank needs (..., T, C), got shape {tuple(z.shape)}")
    z = z.detach().to(torch.float64)
    if centered:
        z = z - z.mean(dim=-2, keepdim=True)
    return entropy_effective_rank(singular_values(z)).to(torch.float32)


@torch.no_grad()
def effective_rank_masked(z: torch.Tensor, mask: torch.Tensor, centered: bool = False) -> torch.Tensor:
    """Effective rank over the valid rows only.

    z: (B, T, C), mask: (B, T) bool (True = valid). Padded rows are zeroed, which leaves the
    uncentred singular values of the valid rows unchanged. With ``centered`` the mean is taken
    over valid rows. Returns (B,); samples with no valid row give NaN.
    """
    valid = mask.unsqueeze(-1).to(torch.float64)
    z = z.detach().to(torch.float64) * valid
    if centered:
        count = valid.sum(dim=-2, keepdim=True).clamp(min=1.0)
        z = (z - z.sum(dim=-2, keepdim=True) / count) * valid
    erank = entropy_effective_rank(singular_values(z)).to(torch.float32)
    return torch.where(mask.any(dim=-1), erank, torch.full_like(erank, float("nan")))


@torch.no_grad()
def inactive_channels(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Number of channels that are exactly zero on every valid row: feature collapse at its
    extreme, a ReLU unit that never fired in the window.

    z: (B, T, C), mask: (B, T) bool (True = valid) -> (B,) float32; samples with no valid row
    give NaN. Such a channel has zero variance, the smallest importance there is, so the
    exchange selects these (and any channel constant over the window) first (docs/method.md
    section 3).
    """
    live = ((z.detach() != 0) & mask.unsqueeze(-1)).any(dim=-2)  # (B, C)
    count = (~live).sum(dim=-1).to(torch.float32)
    return torch.where(mask.any(dim=-1), count, torch.full_like(count, float("nan")))


def rank_gain(before: torch.Tensor, after: torch.Tensor) -> float:
    """Mean erank after the exchange minus mean erank before, over samples (NaN ignored)."""
    return float(torch.nanmean(after.float()) - torch.nanmean(before.float()))


def mutual_gain(gain_a: float, gain_b: float) -> float:
    """Harmonic mean of two modalities' rank gains; 0 when either gain is <= 0.

    High = both modalities gained rank from the exchange (balanced fusion); near 0 = one-sided.
    """
    if gain_a <= 0 or gain_b <= 0:
        return 0.0
    return 2.0 * gain_a * gain_b / (gain_a + gain_b)
