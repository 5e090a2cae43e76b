"""Effective-rank health of one inference window (docs/method.md section 7: erank as a live signal).

Per modality: erank of its tokens before and after the RTF exchange, over the frames where the
modality was present; erank of the fused tokens; the mutual gain of each modality pair (the
harmonic mean of the two rank gains, retf_ros.fusion.mutual_gain). Thresholds turn them into a
status: feature collapse = fused erank below a threshold; modality collapse = a pair's mutual
gain below a threshold; a collapsed or faulty modality = its erank before the exchange outside
the limits its checkpoint saw on healthy validation data. All numbers use the UNCENTRED
convention (singular values of the token matrix as it is, the paper's recipe); every report
says so.

Thresholds per checkpoint: training records the distribution (percentiles) of every window's
eranks on the validation split in the checkpoint metadata (``erank_distribution``,
retf_ros/training/erank_calibration.py); ``thresholds_for`` derives the thresholds from it (WARN
below the ``warn_percentile``, ERROR below the ``error_percentile``), explicit values override,
and a checkpoint without a distribution keeps the fixed defaults of ErankThresholds.

Faulty inputs are judged on two statistics of a modality's last tokens besides their erank
(their ``recent_spread`` and centred erank; docs/node.md, "Reading the effective-rank health"):
a frozen input repeats bit-identical frames, so its tokens do not move at all (spread below
``FROZEN_SPREAD``, where a live sensor's noise alone keeps it well above), and a noise input
moves its tokens in every direction at once (the centred erank near its maximum while the
tokens move as much as in motion), where a real scene changes them along a few.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Mapping

import torch

from retf_ros.errors import RetfError
from retf_ros.fusion.erank import effective_rank_masked, mutual_gain

CONVENTION = "uncentred"
STATUS_ORDER = ("ok", "warn", "error")
DISTRIBUTION_KEY = "erank_distribution"   # checkpoint metadata key of the validation distribution
DISTRIBUTION_PERCENTILES = (0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 98.0, 99.0, 99.5)
# Which recorded percentiles become WARN / ERROR thresholds by default (node: erank.warn_percentile,
# erank.error_percentile).
DEFAULT_WARN_PERCENTILE = 1.0
DEFAULT_ERROR_PERCENTILE = 0.5
DEFAULT_HIGH_PERCENTILE = 99.5
# A faulty input is judged on the erank of its most recent tokens: over a whole window a camera
# that froze 2 s ago still shows the live frames before, and looks like a still scene.
RECENT_FRAMES = 5
# A frozen input: its recent tokens' spread (recent_spread) below this. Identical frames give
# identical tokens (spread 0, or float round-off near 1e-7); on the demo checkpoint's validation
# clips the smallest healthy spread is 3e-4 (depth), set by the sensor's noise alone.
FROZEN_SPREAD = 1e-5
# The recorded percentile of the spread above which a modality counts as moving: the centred
# erank is judged (and its distribution recorded) only then, since a still scene's tokens move by
# sensor noise alone, in every direction, as noise does but far less.
MOVING_PERCENTILE = 50.0


def recent_spread(tokens: torch.Tensor) -> float:
    """How much tokens move: the RMS distance of the (K, C) tokens from their mean token, relative
    to their RMS norm; 0 when they are identical, at most 1. A spread of 0 = a frozen input."""
    z = tokens.detach().to(torch.float64)
    norm = z.square().sum(dim=-1).mean().sqrt()
    deviation = (z - z.mean(dim=0, keepdim=True)).square().sum(dim=-1).mean().sqrt()
    return float(deviation / norm) if norm > 0 else 0.0


def percentile_key(percentile: float) -> str:
    """Key of a percentile in a recorded distribution: 5.0 -> "p5", 0.5 -> "p0.5"."""
    return f"p{percentile:g}"


@dataclass(frozen=True)
class Limits:
    """Bounds on one value: WARN below ``warn_below`` or above ``warn_above``, ERROR below
    ``error_below``; ``None`` disables a bound."""

    warn_below: float | None = None
    error_below: float | None = None
    warn_above: float | None = None


@dataclass(frozen=True)
class FaultLimits:
    """Fault checks of one modality's last tokens beyond their erank: ERROR (frozen) when their
    spread falls below ``frozen_below``; WARN (noise-like) when their centred erank rises above
    ``centred_above`` while their spread is at least ``moving_spread``. ``None`` disables a check."""

    frozen_below: float | None = FROZEN_SPREAD
    moving_spread: float | None = None
    centred_above: float | None = None


@dataclass(frozen=True)
class ErankThresholds:
    """WARN / ERROR thresholds; ``None`` disables a check.

    ``fused_warn`` / ``fused_error``: feature collapse when the fused erank falls below (an
    erank near 1 means every fused token points the same way).
    ``mutual_gain_warn`` / ``mutual_gain_error``: modality collapse when a pair's mutual gain
    falls below (0 means at least one modality of the pair gained no rank from the exchange).
    ``min_frames``: a modality present in fewer frames of the window gets no erank (None):
    the erank of one or two tokens says nothing about collapse.
    ``modality_limits``: modality -> Limits on the erank of its last ``recent_frames`` tokens
    before the exchange (what its own input gives: a frozen camera repeats one token, erank 1;
    noise scatters them), judged when it is present in all of them; none by default, set from a
    checkpoint's distribution by ``thresholds_for``. ``fault_limits``: modality -> FaultLimits on
    the spread and centred erank of the same tokens (from a distribution that records them).
    ``source`` says where the values come from.
    ``full_window``: judge the fused erank and mutual gains only in windows of at least this
    many frames (a stream's first windows have fewer tokens, so a lower erank by construction:
    the distribution the thresholds come from holds full windows only). None: every window.
    """

    fused_warn: float | None = 2.5
    fused_error: float | None = 1.5
    mutual_gain_warn: float | None = 0.05
    mutual_gain_error: float | None = None
    min_frames: int = 4
    modality_limits: Mapping[str, Limits] = field(default_factory=dict)
    fault_limits: Mapping[str, FaultLimits] = field(default_factory=dict)
    recent_frames: int = RECENT_FRAMES
    full_window: int | None = None
    source: str = "built-in defaults"

    def __post_init__(self) -> None:
        for low, high in (("fused_error", "fused_warn"), ("mutual_gain_error", "mutual_gain_warn")):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise RetfError(f"erank threshold {low}={lo} must not exceed {high}={hi}")
        for modality, limits in self.modality_limits.items():
            if None not in (limits.error_below, limits.warn_below) and limits.error_below > limits.warn_below:
                raise RetfError(f"erank limits of {modality}: error_below={limits.error_below} must not exceed "
                                f"warn_below={limits.warn_below}")
        for name in ("min_frames", "recent_frames"):
            if getattr(self, name) < 2:
                raise RetfError(f"erank threshold {name}={getattr(self, name)} must be >= 2")


@dataclass
class ErankReport:
    """Effective ranks of one window and the status they imply.

    ``before`` / ``after``: modality -> erank (None when present in < min_frames frames);
    ``mutual_gain``: "a+b" (checkpoint modality order) -> mutual gain (None when either erank
    is None); ``messages``: why the status is not ok; ``culprits``: what each message is about
    (a modality, "fused" or a pair "a+b"), in the same order; ``window_frames``: valid frames of
    the window; ``modality_frames``: modality -> frames of the window where it was present;
    ``recent``: modality -> erank of its last ``recent_frames`` tokens before the exchange (None
    unless present in all of them); ``spread`` / ``centred``: their recent_spread and centred
    erank (the fault statistics; None likewise).
    """

    before: dict[str, float | None]
    after: dict[str, float | None]
    fused: float | None
    mutual_gain: dict[str, float | None]
    status: str = "ok"
    messages: list[str] = field(default_factory=list)
    culprits: list[str] = field(default_factory=list)
    convention: str = CONVENTION
    window_frames: int = 0
    modality_frames: dict[str, int] = field(default_factory=dict)
    recent: dict[str, float | None] = field(default_factory=dict)
    spread: dict[str, float | None] = field(default_factory=dict)
    centred: dict[str, float | None] = field(default_factory=dict)

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
    # One batched erank call for all 3M + 1 matrices (the per-call overhead dominates at T x C);
    # a modality's recent tokens are its window with the earlier rows masked (zeroed).
    t = valid.shape[0]
    latest = torch.arange(t) >= t - thresholds.recent_frames
    matrices = [tokens_before[m] for m in modalities] * 2 + [tokens_after[m] for m in modalities] + [fused]
    rows = ([present[m] & valid for m in modalities] + [present[m] & valid & latest for m in modalities]
            + [present[m] & valid for m in modalities] + [valid])
    mask = torch.stack(rows)
    values = effective_rank_masked(torch.stack([z.float() for z in matrices]), mask).tolist()
    counts = mask.sum(dim=1).tolist()
    eranks = [v if count >= thresholds.min_frames else None for v, count in zip(values, counts)]
    n = len(modalities)
    judged_recent = [count >= thresholds.recent_frames for count in counts[n:2 * n]]
    recent = [v if ok else None for v, ok in zip(values[n:2 * n], judged_recent)]
    centred = effective_rank_masked(torch.stack(matrices[n:2 * n]).float(), mask[n:2 * n], centered=True).tolist()
    spread = [recent_spread(tokens_before[m][mask[n + i]]) for i, m in enumerate(modalities)]
    report = ErankReport(before=dict(zip(modalities, eranks[:n])), after=dict(zip(modalities, eranks[2 * n:3 * n])),
                         fused=eranks[-1], mutual_gain={}, window_frames=int(counts[-1]),
                         modality_frames={m: int(c) for m, c in zip(modalities, counts[:n])},
                         recent=dict(zip(modalities, recent)),
                         spread={m: v if ok else None for m, v, ok in zip(modalities, spread, judged_recent)},
                         centred={m: v if ok else None for m, v, ok in zip(modalities, centred, judged_recent)})
    for a, b in combinations(modalities, 2):
        gain_a, gain_b = report.gain(a), report.gain(b)
        report.mutual_gain[f"{a}+{b}"] = None if gain_a is None or gain_b is None else mutual_gain(gain_a, gain_b)
    _apply_thresholds(report, thresholds)
    return report


def judged(report: ErankReport, thresholds: ErankThresholds) -> ErankReport:
    """A copy of ``report`` with its status, messages and culprits decided by ``thresholds``."""
    fresh = replace(report, status="ok", messages=[], culprits=[])
    _apply_thresholds(fresh, thresholds)
    return fresh


def _apply_thresholds(report: ErankReport, thresholds: ErankThresholds) -> None:
    def raise_to(status: str, message: str, culprit: str) -> None:
        report.messages.append(message)
        report.culprits.append(culprit)
        if STATUS_ORDER.index(status) > STATUS_ORDER.index(report.status):
            report.status = status

    def check(value: float | None, limits: Limits, describe: str, culprit: str) -> None:
        if value is None:
            return
        if limits.error_below is not None and value < limits.error_below:
            raise_to("error", f"{describe} {value:.3f} < error threshold {limits.error_below:.4g}", culprit)
        elif limits.warn_below is not None and value < limits.warn_below:
            raise_to("warn", f"{describe} {value:.3f} < warn threshold {limits.warn_below:.4g}", culprit)
        elif limits.warn_above is not None and value > limits.warn_above:
            raise_to("warn", f"{describe} {value:.3f} > warn threshold {limits.warn_above:.4g}", culprit)

    last = f"its last {thresholds.recent_frames} tokens"
    for modality, limits in thresholds.modality_limits.items():
        check(report.recent.get(modality), limits, f"{modality} input: erank of {last}", modality)
    for modality, faults in thresholds.fault_limits.items():
        spread, centred = report.spread.get(modality), report.centred.get(modality)
        if spread is None:
            continue
        if faults.frozen_below is not None and spread < faults.frozen_below:
            raise_to("error", f"{modality} input: frozen, {last} do not move (spread {spread:.2e} < "
                              f"{faults.frozen_below:.2g})", modality)
        elif (faults.centred_above is not None and centred is not None and centred > faults.centred_above
              and spread >= (faults.moving_spread or 0.0)):
            raise_to("warn", f"{modality} input: noise-like, centred erank of {last} {centred:.3f} > warn threshold "
                             f"{faults.centred_above:.4g} (spread {spread:.2g})", modality)
    if thresholds.full_window is not None and report.window_frames < thresholds.full_window:
        return
    check(report.fused, Limits(thresholds.fused_warn, thresholds.fused_error), "feature collapse: fused erank",
          "fused")
    for pair, gain in report.mutual_gain.items():
        check(gain, Limits(thresholds.mutual_gain_warn, thresholds.mutual_gain_error),
              f"modality collapse: {pair} mutual gain", pair)


# Node parameters (ros/params.py) that thresholds_for reads; a negative value means "auto".
THRESHOLD_PARAMETERS = ("erank.fused_warn", "erank.fused_error", "erank.mutual_gain_warn",
                        "erank.mutual_gain_error")


def thresholds_from_distribution(distribution: dict, base: ErankThresholds, warn_percentile: float,
                                 error_percentile: float, high_percentile: float | None = None) -> ErankThresholds:
    """Thresholds from a recorded validation distribution (``erank_distribution``): the fused
    erank (over full windows of ``distribution["window"]`` frames, the only ones it is judged
    in then) and the erank of each modality's last ``distribution["recent_frames"]`` tokens
    before the exchange (``distribution["recent"]``) WARN below their ``warn_percentile`` and
    ERROR below their ``error_percentile`` (0 disables that level); with ``high_percentile`` a
    modality's recent erank also WARNs above it. Where the distribution records the fault
    statistics of those tokens (``spread``, and ``recent_centred`` over the windows whose spread is
    at least its ``MOVING_PERCENTILE``), a modality gets FaultLimits instead of the low side of its
    erank: ERROR below ``FROZEN_SPREAD``, WARN when moving and its centred erank is above the
    ``high_percentile``. The mutual gains WARN / ERROR
    below the lowest pair's percentile, off where that is 0 (a pair that often gains nothing).
    Raises RetfError when a percentile was not recorded."""
    def value(summary: dict, percentile: float | None) -> float | None:
        if not percentile:
            return None
        key = percentile_key(percentile)
        if key not in summary:
            recorded = ", ".join(k for k in summary if k.startswith("p"))
            raise RetfError(f"the checkpoint's erank distribution has no {key} (recorded: {recorded})")
        return float(summary[key])

    def positive(x: float | None) -> float | None:
        return x if x is not None and x > 0 else None

    spreads, centred = distribution.get("spread", {}), distribution.get("recent_centred", {})
    faults = {m: FaultLimits(FROZEN_SPREAD, value(s, MOVING_PERCENTILE),
                             value(centred[m], high_percentile) if centred.get(m, {}).get("windows") else None)
              for m, s in spreads.items() if s.get("windows")}
    # With the fault statistics recorded a frozen input is told by its spread, so the erank's low
    # side (which a still scene reaches too) is not judged; without them it is the frozen check.
    limits = {m: Limits(None, None, value(s, high_percentile)) if m in faults else
              Limits(value(s, warn_percentile), value(s, error_percentile), value(s, high_percentile))
              for m, s in distribution.get("recent", {}).items() if s.get("windows")}
    fused = distribution.get("fused") or {}
    pairs = [s for s in distribution.get("mutual_gain", {}).values() if s.get("windows")]

    def lowest_pair(percentile: float) -> float | None:
        values = [value(s, percentile) for s in pairs] if percentile else []
        return positive(min(values)) if values else None

    levels = f"warn < p{warn_percentile:g}, error < p{error_percentile:g}" + (
        f", warn > p{high_percentile:g}" if high_percentile else "")
    return replace(base, fused_warn=value(fused, warn_percentile) if fused.get("windows") else base.fused_warn,
                   fused_error=value(fused, error_percentile) if fused.get("windows") else base.fused_error,
                   mutual_gain_warn=lowest_pair(warn_percentile), mutual_gain_error=lowest_pair(error_percentile),
                   modality_limits=limits, fault_limits=faults, full_window=distribution.get("window"),
                   recent_frames=int(distribution.get("recent_frames", base.recent_frames)),
                   source=f"checkpoint validation distribution ({distribution.get('windows', '?')} windows; {levels})")


def thresholds_for(metadata: dict, params: Mapping[str, float] | None = None, *,
                   warn_percentile: float = DEFAULT_WARN_PERCENTILE, error_percentile: float = DEFAULT_ERROR_PERCENTILE,
                   high_percentile: float | None = DEFAULT_HIGH_PERCENTILE,
                   min_frames: int | None = None) -> ErankThresholds:
    """The erank thresholds for a checkpoint (its JSON ``metadata``) under node parameters.

    ``params``: ``THRESHOLD_PARAMETERS`` by dotted name; a missing or negative value is "auto"
    (from the checkpoint's distribution, else the fixed default of ErankThresholds), 0
    disables that check, a positive value is used as it is (and replaces the derived value).
    """
    base = ErankThresholds() if min_frames is None else ErankThresholds(min_frames=min_frames)
    distribution = metadata.get(DISTRIBUTION_KEY)
    if distribution:
        base = thresholds_from_distribution(distribution, base, warn_percentile, error_percentile, high_percentile)
    explicit = {name.removeprefix("erank."): float(v) for name, v in (params or {}).items()
                if name in THRESHOLD_PARAMETERS and v is not None and float(v) >= 0}
    return replace(base, **{name: (v if v > 0 else None) for name, v in explicit.items()})
