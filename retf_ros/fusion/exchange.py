"""The RTF exchange step (docs/method.md section 3).

For each sample and modality, the k = floor(ratio * C) channels with the smallest importance
(variance over the valid frames) receive the same channel of a partner modality:
x' = a * x + (1 - a) * y on every valid frame, with one learnable per-channel ``a`` shared by
every direction. Selection and partner choice carry no gradient; the blend does.
"""
from __future__ import annotations

from typing import Sequence

import torch

PARTNER_RULES = ("most_informative", "mean")


def channel_importance(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Per-channel variance over valid frames.

    x: (B, M, T, C), valid: (B, M, T) bool, or None when every frame is valid -> (B, M, C)
    float32 (population variance; 0 where fewer than one valid frame). Equals the channel's
    energy in the centred SVD divided by the number of valid frames.
    """
    with torch.no_grad():
        if valid is None:  # the same arithmetic without the masking (bit-identical to an all-true mask)
            xs = x.detach().float()
            count = torch.full((*x.shape[:2], 1), float(x.shape[2]), dtype=torch.float32, device=x.device)
            mean = xs.sum(dim=2) / count
            return ((xs - mean.unsqueeze(2)) ** 2).sum(dim=2) / count
        w = valid.unsqueeze(-1).to(torch.float32)
        xs = torch.where(valid.unsqueeze(-1), x.detach().float(), torch.zeros((), dtype=torch.float32, device=x.device))
        count = w.sum(dim=2).clamp(min=1.0)
        mean = xs.sum(dim=2) / count
        return (((xs - mean.unsqueeze(2)) * w) ** 2).sum(dim=2) / count


def lowest_importance_channels(importance: torch.Tensor, k: int) -> torch.Tensor:
    """(..., C) -> (..., C) bool marking the k least important channels (ties: lower index first)."""
    order = torch.sort(importance, dim=-1, stable=True).indices[..., :k]
    selected = torch.zeros_like(importance, dtype=torch.bool)
    return selected.scatter_(-1, order, True)


def _per_modality_masks(mask, batch: int, steps: int, m: int, device) -> torch.Tensor:
    """Normalise ``mask`` (None, (B, T), or M x (B, T)) to (B, M, T) bool."""
    if mask is None:
        return torch.ones(batch, m, steps, dtype=torch.bool, device=device)
    if isinstance(mask, torch.Tensor):
        if mask.shape != (batch, steps):
            raise ValueError(f"mask must be (B, T) = {(batch, steps)}, got {tuple(mask.shape)}")
        return mask.bool().unsqueeze(1).expand(batch, m, steps)
    if len(mask) != m:
        raise ValueError(f"expected {m} per-modality masks, got {len(mask)}")
    return torch.stack([mk.bool() for mk in mask], dim=1)


def rank_exchange(tokens: Sequence[torch.Tensor], alpha: torch.Tensor, ratio: float,
                  mask=None, partner: str = "most_informative",
                  importance: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Exchange the least informative channels of each modality with a partner modality.

    tokens: M tensors (B, T, C), time-aligned. alpha: (C,) blend weight a in [0, 1] (already
    through the sigmoid). ratio: rho, k = floor(rho * C) channels per sample and modality.
    mask: None, a (B, T) bool validity mask shared by all modalities, or M (B, T) masks (a
    modality that is missing at a frame is invalid there). Invalid frames neither influence the
    selection nor are modified; a (sample, modality) with fewer than 2 valid frames neither
    receives nor donates. partner: "most_informative" (per channel, the other modality with the
    largest importance on it) or "mean" (mean of the other valid modalities at that frame).
    importance: optional M tensors (C,) or (B, C) used instead of the variance (the "bn_gamma"
    ablation: |BatchNorm scale|). Returns M tensors (B, T, C); channels outside the selection
    are returned bit-identical.
    """
    if partner not in PARTNER_RULES:
        raise ValueError(f"partner must be one of {PARTNER_RULES}, got {partner!r}")
    m = len(tokens)
    if m < 2:
        return list(tokens)
    x = torch.stack(list(tokens), dim=1)  # (B, M, T, C)
    b, _, t, c = x.shape
    k = int(ratio * c)
    if k <= 0:
        return list(tokens)
    if mask is None and m == 2:
        return _exchange_valid_pair(x, alpha, k, importance)
    valid = _per_modality_masks(mask, b, t, m, x.device)

    with torch.no_grad():
        active = valid.sum(dim=-1) >= 2  # (B, M)
        if importance is None:
            score = channel_importance(x, valid)
        else:
            score = torch.stack([imp.detach().float().expand(b, c) for imp in importance], dim=1)
        selected = lowest_importance_channels(score, k) & active.unsqueeze(-1)  # (B, M, C)
        # donor_ok[b, recv, donor]: donor is another modality that is active in this sample
        eye = torch.eye(m, dtype=torch.bool, device=x.device)
        donor_ok = active.unsqueeze(1) & ~eye.unsqueeze(0)  # (B, M, M)
        has_donor = donor_ok.any(dim=-1, keepdim=True)  # (B, M, 1)

    x_safe = torch.where(valid.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))
    if m == 2:
        # Under either rule the only possible partner is the other modality (where it cannot
        # donate, has_donor or partner_valid is False): no choice, no gather.
        y, partner_valid = x_safe.flip(1), valid.flip(1).unsqueeze(-1)
    elif partner == "most_informative":
        with torch.no_grad():
            donor_score = score.unsqueeze(1).masked_fill(~donor_ok.unsqueeze(-1), float("-inf"))  # (B, M, M, C)
            choice = donor_score.argmax(dim=2)  # (B, M, C): first maximum wins ties
            index = choice.unsqueeze(2).expand(b, m, t, c)
            partner_valid = torch.gather(valid.unsqueeze(-1).expand(b, m, t, c), 1, index)
        y = torch.gather(x_safe, 1, index)  # y[b, r, t, c] = x[b, choice[b, r, c], t, c]
    else:
        with torch.no_grad():
            weight = (donor_ok.unsqueeze(-1) & valid.unsqueeze(1)).to(x.dtype)  # (B, M_recv, M_donor, T)
            count = weight.sum(dim=2)  # (B, M, T)
            partner_valid = (count > 0).unsqueeze(-1).expand(b, m, t, c)
        y = torch.einsum("brdt,bdtc->brtc", weight, x_safe) / count.clamp(min=1).unsqueeze(-1)

    apply = selected.unsqueeze(2) & valid.unsqueeze(-1) & partner_valid & has_donor.unsqueeze(-1)
    a = alpha.to(x.dtype)
    blended = a * x_safe + (1 - a) * y
    out = torch.where(apply, blended, x)
    return list(out.unbind(dim=1))


def _exchange_valid_pair(x: torch.Tensor, alpha: torch.Tensor, k: int,
                         importance: Sequence[torch.Tensor] | None) -> list[torch.Tensor]:
    """rank_exchange of two modalities valid on every frame, without the masking that then
    changes nothing (a third of the operations; the same numbers). x: (B, 2, T, C)."""
    b, _, t, c = x.shape
    if t < 2:  # fewer than 2 valid frames: neither receives nor donates
        return list(x.unbind(dim=1))
    with torch.no_grad():
        if importance is None:
            score = channel_importance(x, None)
        else:
            score = torch.stack([imp.detach().float().expand(b, c) for imp in importance], dim=1)
        selected = lowest_importance_channels(score, k)  # (B, 2, C)
    a = alpha.to(x.dtype)
    blended = a * x + (1 - a) * x.flip(1)  # each modality's partner is the other one
    return list(torch.where(selected.unsqueeze(2), blended, x).unbind(dim=1))
