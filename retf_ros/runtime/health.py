"""Effective-rank health of one inference window (method.md section 7: erank as a live signal).

Per modality: erank of its tokens before and after the RTF exchange, over the frames where the
modality was present; erank of the fused tokens; the mutual gain of each modality pair (the
harmonic mean of the two rank gains, retf_ros.fusion.mutual_gain). Thresholds turn them into a
status: feature collapse = fused erank below a threshold; modality collapse = a pair's mutual
gain below a threshold. All numbers use the UNCENTRED convention (singular values of the token
matrix as it is, the paper's recipe); every report says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import torch

from retf_ros.errors import RetfError
from retf_ros.fusion.erank import effective_rank_masked, mutual_gain

CONVENTION = "uncentred"
STATUS_ORDER = ("ok", "warn", "error")


@dataclass(frozen=True)
class ErankThresholds:
    """WARN / ERROR thresholds; ``None`` disables a check.

    ``fused_warn`` / ``fused_error``: feature collapse when the fused erank falls below (an
    erank near 1 means every fused token points the same way).
    ``mutual_gain_warn`` / ``mutual_gain_error``: modality collapse when a pair's mutual gain
    falls below (0 means at least one modality of the pair gained no rank from the exchange).
    ``min_frames``: a modality present in fewer frames of the window gets no erank (None):
    the erank of one or two tokens says nothing about collapse.
    """

    fused_warn: float | None = 2.5
    fused_error: float | None = 1.5
    mutual_gain_warn: float | None = 0.05
    mutual_gain_error: float | None = None
    min_frames: int = 4

    def __post_init__(self) -> None:
        for low, high in (("fused_error", "fused_warn"), ("mutual_gain_error", "mutual_gain_warn")):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise RetfError(f"erank threshold {low}={lo} must not exceed {high}={hi}")
        if self.min_frames < 2:
            raise RetfError(f"erank threshold min_frames={self.min_frames} must be >= 2")


@dataclass
class ErankReport:
    """Effective ranks of one window and the status they imply.

    ``before`` / ``after``: modality -> erank (None when present in < min_frames frames);
    ``mutual_gain``: "a+b" (checkpoint modality order) -> mutual gain (None when either erank
    is None); ``messages``: why the status is not ok.
    """

    before: dict[str, float | None]
    after: dict[str, float | None]
    fused: float | None
    mutual_gain: dict[str, float | None]
    status: str = "ok"
    messages: list[str] = field(default_factory=list)
    convention: str = CONVENTION

    def gain(self, modality: str) -> float | None:
        before, after = self.before.get(modality), self.after.get(modality)
        return None if before is None or after is None else after - before


def window_erank_report(tokens_before: dict[str, torch.Tensor], tokens_after: dict[str, torch.Tensor],
                        fused: torch.Tensor, present: dict[str, torch.Tensor], valid: torch.Tensor,
                        thresholds: ErankThresholds) -> ErankReport:
    """Erank report of one window.

    tokens_before / tokens_after: modality -> (T, C) (the exchange's input / output, in the
    checkpoint's modality order); fused: (T, C); present: modality -> (T,) bool;
    valid: (T,) bool frames of the window.
    """
    modalities = list(tokens_before)
    # One batched erank call for all 2M + 1 matrices (the per-call overhead dominates at T x C).
    matrices = [tokens_before[m] for m in modalities] + [tokens_after[m] for m in modalities] + [fused]
    rows = [present[m] & valid for m in modalities] * 2 + [valid]
    mask = torch.stack(rows)
    values = effective_rank_masked(torch.stack([z.float() for z in matrices]), mask).tolist()
    enough = (mask.sum(dim=1) >= thresholds.min_frames).tolist()
    eranks = [v if ok else None for v, ok in zip(values, enough)]
    n = len(modalities)
    report = ErankReport(before=dict(zip(modalities, eranks[:n])), after=dict(zip(modalities, eranks[n:2 * n])),
                         fused=eranks[-1], mutual_gain={})
    for a, b in combinations(modalities, 2):
        gain_a, gain_b = report.gain(a), report.gain(b)
        report.mutual_gain[f"{a}+{b}"] = None if gain_a is None or gain_b is None else mutual_gain(gain_a, gain_b)
    _apply_thresholds(report, thresholds)
    return report


def _apply_thresholds(report: ErankReport, thresholds: ErankThresholds) -> None:
    def raise_to(status: str, message: str) -> None:
        report.messages.append(message)
        if STATUS_ORDER.index(status) > STATUS_ORDER.index(report.status):
            report.status = status

    def check(value: float | None, error: float | None, warn: float | None, describe: str) -> None:
        if value is None:
            return
        if error is not None and value < error:
            raise_to("error", f"{describe} {value:.3f} < error threshold {error}")
        elif warn is not None and value < warn:
            raise_to("warn", f"{describe} {value:.3f} < warn threshold {warn}")

    check(report.fused, thresholds.fused_error, thresholds.fused_warn, "feature collapse: fused erank")
    for pair, gain in report.mutual_gain.items():
        check(gain, thresholds.mutual_gain_error, thresholds.mutual_gain_warn,
              f"modality collapse: {pair} mutual gain")
