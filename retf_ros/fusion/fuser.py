"""Fusion of per-modality tokens into one token per time step.

``RankEnhancingTokenFuser`` is RTF: the rank exchange (exchange.py) followed by the cross-only
fusion block of docs/method.md section 4. The baselines used in ablations (no exchange, concat, sum,
and the exchange in front of the sum) share the same call signature so that the anticipation
model compares like with like.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from retf_ros.fusion.cpu_linear import linear
from retf_ros.fusion.exchange import rank_exchange

FUSION_KINDS = ("rtf", "no_exchange", "concat", "sum", "sum_exchange")
SELECTION_RULES = ("variance", "bn_gamma")


@dataclass
class FusionOutput:
    fused: torch.Tensor          # (B, T, C) one token per time step
    exchanged: list[torch.Tensor]  # M x (B, T, C): the tokens after the exchange (= input without one)
    valid: torch.Tensor          # (B, M, T) bool: modality m observed at frame t


class CrossModalBlock(nn.Module):
    """Pre-LN transformer block over the M modality tokens of one time step in which each token
    attends ONLY to the other modalities' present tokens (diagonal and absent ones masked).

    A token with nothing to attend to (a single present modality) gets a zero attention update.
    ``present=None`` says every token is present (no masking needed; the same numbers).
    """

    def __init__(self, dim: int, heads: int = 8, mlp_ratio: int = 4, dropout: float = 0.1):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(mlp_ratio * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, present: torch.Tensor | None) -> torch.Tensor:
        """x: (N, M, C) tokens, present: (N, M) bool or None (all present) -> (N, M, C)."""
        h = self.norm1(x)
        if x.shape[1] == 2:
            attended = self._attend_to_the_other(h, present)
        else:
            attended = self._attend(h, present if present is not None else x.new_ones(x.shape[:2], dtype=torch.bool))
        x = x + self.drop(self.proj(attended))
        return x + self.drop(self._feed_forward(self.norm2(x)))

    def _feed_forward(self, h: torch.Tensor) -> torch.Tensor:
        """self.mlp (N, M, C) -> (N, M, C). Out of training its dropout is the identity, so the
        two projections go through cpu_linear, which fuses the GELU into the first one's kernel
        on the CPU."""
        if self.training:
            return self.mlp(h)
        expand, _, _, contract = self.mlp
        return linear(linear(h, expand, "gelu"), contract)

    def _attend(self, h: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Cross-only attention of normalised tokens h (N, M, C), present (N, M) -> (N, M, C)."""
        n, m, c = h.shape
        q, k, v = self.qkv(h).view(n, m, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        eye = torch.eye(m, dtype=torch.bool, device=h.device)
        allowed = present.unsqueeze(1) & ~eye  # (N, M_query, M_key)
        scores = (q @ k.transpose(-1, -2)) * (c // self.heads) ** -0.5  # (N, H, M, M)
        scores = scores.masked_fill(~allowed.unsqueeze(1), float("-inf"))
        has_key = allowed.any(dim=-1)  # (N, M)
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
        attended = (weights @ v).transpose(1, 2).reshape(n, m, c)
        return attended * has_key.unsqueeze(-1).to(attended.dtype)

    def _attend_to_the_other(self, h: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """``_attend`` for M = 2, in a third of the work: a token's only allowed key is the other
        modality's token, and a softmax over one key is exactly 1 in every head, so attention
        returns the other token's value (0 where the other is absent); queries and keys are
        never needed. h: (N, 2, C), present: (N, 2) or None (both present) -> (N, 2, C)."""
        c = h.shape[-1]
        v = F.linear(h, self.qkv.weight[2 * c:])  # the value rows of the fused q/k/v projection
        if present is None:
            return v.flip(1)
        other_present = present.flip(1).unsqueeze(-1)
        return torch.where(other_present, v.flip(1), torch.zeros((), dtype=v.dtype, device=v.device))


def _checked_exchange_ratio(ratio: float) -> float:
    """rho, refused outside [0, 1) when the fusion is built (not on every forward)."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"exchange ratio must be in [0, 1), got {ratio}")
    return ratio


def every_true_on_cpu(mask: torch.Tensor) -> bool:
    """True when ``mask`` is a CPU tensor and all True (a fast path may then skip its masking).
    Never asked of a GPU tensor: the answer would cost a device -> host sync, which stalls the
    queue of kernels; there the masked computation runs, which gives the same numbers."""
    return mask.device.type == "cpu" and bool(mask.all())


def _masked_token_mean(tokens: torch.Tensor, present: torch.Tensor | None) -> torch.Tensor:
    """(N, M, C), (N, M) bool or None (all present) -> (N, C): mean over present tokens (0 where none)."""
    if present is None:
        return tokens.mean(dim=1)
    w = present.unsqueeze(-1).to(tokens.dtype)
    return (tokens * w).sum(dim=1) / w.sum(dim=1).clamp(min=1)


class RankEnhancingTokenFuser(nn.Module):
    """RTF: exchange the least informative channels between modalities, then fuse per time step.

    Owns the blend logits (``alpha_logit``, init 0: a = 0.5) and the cross-only fusion block.
    ``exchange=False`` gives the "no exchange" baseline with the identical fusion block.
    ``selection="bn_gamma"`` ranks channels by the |scale| of a per-modality BatchNorm instead
    of the window variance (the authors' committed code; an ablation only). That rule needs the
    BatchNorm in front of the exchange; ``batch_norm=True`` adds the same BatchNorm to the
    variance rule, so an ablation can tell the normalisation from the selection rule.
    """

    def __init__(self, num_modalities: int, dim: int = 128, ratio: float = 0.3, heads: int = 8,
                 dropout: float = 0.1, partner: str = "most_informative", selection: str = "variance",
                 exchange: bool = True, batch_norm: bool = False):
        super().__init__()
        if selection not in SELECTION_RULES:
            raise ValueError(f"selection must be one of {SELECTION_RULES}, got {selection!r}")
        self.num_modalities = num_modalities
        self.ratio = _checked_exchange_ratio(ratio)
        self.partner = partner
        self.selection = selection
        self.exchange = exchange
        self.alpha_logit = nn.Parameter(torch.zeros(dim))
        self.norms = nn.ModuleList(nn.BatchNorm1d(dim) for _ in range(num_modalities)) \
            if batch_norm or selection == "bn_gamma" else None
        self.token_dropout = nn.Dropout(dropout)
        self.block = CrossModalBlock(dim, heads=heads, dropout=dropout)
        self.norm = nn.LayerNorm(dim)

    @property
    def alpha(self) -> torch.Tensor:
        """(C,) per-channel blend weight a = sigmoid(alpha_logit)."""
        return torch.sigmoid(self.alpha_logit)

    def _batch_norm(self, tokens: list[torch.Tensor], valid: torch.Tensor) -> list[torch.Tensor]:
        """Per-modality BatchNorm over valid frames only."""
        out = []
        for i, (x, norm) in enumerate(zip(tokens, self.norms)):
            keep = valid[:, i]
            y = x.clone()
            if keep.any():
                y[keep] = norm(x[keep])
            out.append(y)
        return out

    def forward(self, tokens: list[torch.Tensor], valid: torch.Tensor) -> FusionOutput:
        """tokens: M x (B, T, C); valid: (B, M, T) bool (frame valid and modality present)."""
        importance = None
        if self.norms is not None:
            tokens = self._batch_norm(tokens, valid)
        if self.selection == "bn_gamma":
            importance = [norm.weight.abs() for norm in self.norms]
        # Every token valid (the streaming case; only asked on the CPU): the exchange and the
        # fusion block skip their masking, which changes nothing then.
        all_valid = every_true_on_cpu(valid)
        if self.exchange:
            mask = None if all_valid else list(valid.unbind(1))
            exchanged = rank_exchange(tokens, self.alpha, self.ratio, mask=mask,
                                      partner=self.partner, importance=importance)
        else:
            exchanged = list(tokens)
        b, t, c = exchanged[0].shape
        stacked = torch.stack(exchanged, dim=2).reshape(b * t, self.num_modalities, c)
        present = None if all_valid else valid.permute(0, 2, 1).reshape(b * t, self.num_modalities)
        fused = self.norm(self.block(self.token_dropout(stacked), present))
        fused = _masked_token_mean(fused, present).view(b, t, c)
        return FusionOutput(fused=fused, exchanged=exchanged, valid=valid)


class ConcatFusion(nn.Module):
    """Baseline: concatenate the M tokens (absent ones as zeros) and project back to C."""

    def __init__(self, num_modalities: int, dim: int = 128, dropout: float = 0.1):
        super().__init__()
        self.proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(num_modalities * dim, dim), nn.LayerNorm(dim))

    def forward(self, tokens: list[torch.Tensor], valid: torch.Tensor) -> FusionOutput:
        zeroed = [x * valid[:, i].unsqueeze(-1).to(x.dtype) for i, x in enumerate(tokens)]
        return FusionOutput(fused=self.proj(torch.cat(zeroed, dim=-1)), exchanged=list(tokens), valid=valid)


class SumFusion(nn.Module):
    """Baseline: sum of the present tokens, then LayerNorm.

    ``exchange_ratio`` > 0 puts the RTF exchange (variance rule, its own blend logits, init
    a = 0.5) in front of the sum. Every fused channel already adds the modalities' same channel,
    so there the exchange brings no information: it only reweights, per sample, the partners'
    channels, and measures what that blend does to training.
    """

    def __init__(self, num_modalities: int, dim: int = 128, dropout: float = 0.1, exchange_ratio: float = 0.0,
                 partner: str = "most_informative"):
        super().__init__()
        self.exchange_ratio = _checked_exchange_ratio(exchange_ratio)
        self.partner = partner
        if exchange_ratio > 0:
            self.alpha_logit = nn.Parameter(torch.zeros(dim))
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: list[torch.Tensor], valid: torch.Tensor) -> FusionOutput:
        if self.exchange_ratio > 0:
            tokens = rank_exchange(tokens, torch.sigmoid(self.alpha_logit), self.exchange_ratio,
                                   mask=list(valid.unbind(1)), partner=self.partner)
        w = valid.unsqueeze(-1).to(tokens[0].dtype)  # (B, M, T, 1)
        summed = (torch.stack(tokens, dim=1) * w).sum(dim=1)
        return FusionOutput(fused=self.norm(self.drop(summed)), exchanged=list(tokens), valid=valid)


def build_fusion(kind: str, num_modalities: int, dim: int = 128, ratio: float = 0.3, heads: int = 8,
                 dropout: float = 0.1, partner: str = "most_informative",
                 selection: str = "variance", batch_norm: bool = False) -> nn.Module:
    """Every fusion variant behind one interface: ``module(tokens, valid) -> FusionOutput``.

    kinds: "rtf", "no_exchange", "concat", "sum", "sum_exchange" (the exchange with ``ratio`` and
    ``partner`` in front of the sum; ``batch_norm``: the RTF block's per-modality BatchNorm, see
    ``RankEnhancingTokenFuser``). A single-modality model uses the RTF block
    (with one modality there is nothing to exchange or attend to, so it reduces to the MLP).
    """
    if kind not in FUSION_KINDS:
        raise ValueError(f"fusion must be one of {FUSION_KINDS}, got {kind!r}")
    if kind in ("rtf", "no_exchange"):
        return RankEnhancingTokenFuser(num_modalities, dim, ratio=ratio, heads=heads, dropout=dropout,
                                       partner=partner, selection=selection, exchange=kind == "rtf",
                                       batch_norm=batch_norm)
    if kind == "concat":
        return ConcatFusion(num_modalities, dim, dropout)
    return SumFusion(num_modalities, dim, dropout, exchange_ratio=ratio if kind == "sum_exchange" else 0.0,
                     partner=partner)


__all__ = ["RankEnhancingTokenFuser", "ConcatFusion", "SumFusion", "CrossModalBlock", "FusionOutput",
           "build_fusion", "FUSION_KINDS", "SELECTION_RULES"]
