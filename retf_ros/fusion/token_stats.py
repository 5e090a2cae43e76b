"""Per-token statistics of the tokens entering the exchange: what tells signed, LayerNorm-ed
tokens (the authors': per-token mean over the channels ~0, per-token sd ~1) from ReLU tokens
(every value >= 0, a positive mean, dead channels).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TokenMoments:
    """Running sums over tokens of their channel mean and channel sd (population, over C)."""

    count: int = 0
    mean_sum: float = 0.0
    mean_sq_sum: float = 0.0
    sd_sum: float = 0.0

    @torch.no_grad()
    def add(self, z: torch.Tensor, mask: torch.Tensor) -> None:
        """z: (B, T, C) tokens, mask: (B, T) bool: only the valid tokens count."""
        tokens = z.detach().to(torch.float64)[mask.bool()]  # (N, C)
        means = tokens.mean(dim=-1)
        self.count += int(tokens.shape[0])
        self.mean_sum += float(means.sum())
        self.mean_sq_sum += float((means * means).sum())
        self.sd_sum += float(tokens.std(dim=-1, correction=0).sum())

    def summary(self) -> dict:
        """{"token_mean": mean over tokens of the per-token channel mean, "token_mean_sd": its sd
        over tokens, "token_sd": mean over tokens of the per-token channel sd}; NaN without tokens."""
        if self.count == 0:
            return {"token_mean": float("nan"), "token_mean_sd": float("nan"), "token_sd": float("nan")}
        mean = self.mean_sum / self.count
        variance = max(self.mean_sq_sum / self.count - mean * mean, 0.0)
        return {"token_mean": mean, "token_mean_sd": variance ** 0.5, "token_sd": self.sd_sum / self.count}
