"""Mean over classes (MoC) accuracy of anticipated frames, docs/method.md section 6.

Correct and total frame counts are accumulated per ground-truth class over the whole test
set (not averaged per video), separately for every (alpha, horizon) cell; the cell's MoC is
the mean per-class accuracy over the classes that occur in that cell's ground truth. A frame
predicted as NONE (or any id that is not the ground truth) counts as wrong. Ground-truth
frames labelled IGNORE (-1) are not scored.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from retf_ros.training import windows

ALPHAS = (0.2, 0.3)
HORIZONS = (0.1, 0.2, 0.3, 0.5)


def cell_key(value: float) -> str:
    """The JSON key of an alpha or horizon ("0.2", "0.5")."""
    return f"{value:g}"


class MoCAccumulator:
    """Per-class correct/total frame counts for every (alpha, horizon) cell."""

    def __init__(self, num_classes: int, alphas: Iterable[float] = ALPHAS,
                 horizons: Iterable[float] = HORIZONS):
        self.num_classes = num_classes
        self.alphas = tuple(alphas)
        self.horizons = tuple(horizons)
        shape = (len(self.alphas), len(self.horizons), num_classes)
        self.correct = np.zeros(shape, dtype=np.int64)
        self.total = np.zeros(shape, dtype=np.int64)

    def update(self, alpha: float, horizon: float, predicted: np.ndarray, truth: np.ndarray) -> None:
        """Add one scored future: predicted and truth are (F,) class ids of the same frames."""
        predicted = np.asarray(predicted)
        truth = np.asarray(truth)
        if predicted.shape != truth.shape:
            raise ValueError(f"predicted {predicted.shape} and truth {truth.shape} differ in shape")
        a = self.alphas.index(alpha)
        h = self.horizons.index(horizon)
        scored = truth >= 0
        truth = truth[scored]
        hits = predicted[scored] == truth
        self.total[a, h] += np.bincount(truth, minlength=self.num_classes)[: self.num_classes]
        self.correct[a, h] += np.bincount(truth[hits], minlength=self.num_classes)[: self.num_classes]

    def per_class(self) -> np.ndarray:
        """(A, H, K) accuracy in percent; NaN for classes absent from a cell's ground truth."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.total > 0, 100.0 * self.correct / np.maximum(self.total, 1), np.nan)

    def table(self) -> dict[str, dict[str, float]]:
        """{"0.2": {"0.1": pct, ...}, "0.3": {...}}; NaN for a cell with no scored frame."""
        acc = self.per_class()
        out: dict[str, dict[str, float]] = {}
        for a, alpha in enumerate(self.alphas):
            row = {}
            for h, horizon in enumerate(self.horizons):
                present = self.total[a, h] > 0
                row[cell_key(horizon)] = float(acc[a, h][present].mean()) if present.any() else float("nan")
            out[cell_key(alpha)] = row
        return out

    def mean(self) -> float:
        """Mean over every cell of the table (the single number used for model selection)."""
        values = [v for row in self.table().values() for v in row.values()]
        return float(np.nanmean(values)) if values else float("nan")


def longest_future(num_frames: int, horizons: Iterable[float] = HORIZONS) -> int:
    """Frames a prediction must cover to be scored at every horizon (and the 0.5 L future)."""
    return windows.future_length(num_frames, max(windows.PROTOCOL_FUTURE, *horizons))


def score_future(accumulator: MoCAccumulator, alpha: float, labels: np.ndarray, prediction: np.ndarray) -> None:
    """Score one clip observed up to its alpha x L prefix: the first p x L frames of
    ``prediction`` (F,) against the clip's (N,) ``labels`` after the prefix, for every horizon p
    of the accumulator. Models and the prior (prior.py) are scored by this one function."""
    n = len(labels)
    observed = windows.observed_length(n, alpha)
    for p in accumulator.horizons:
        truth = labels[observed: observed + windows.future_length(n, p)]
        accumulator.update(alpha, p, prediction[:len(truth)], truth)


def format_table(moc: dict[str, dict[str, float]], title: str = "MoC (%)") -> str:
    """The MoC table as aligned text: one row per alpha, one column per horizon."""
    horizons = list(next(iter(moc.values())).keys()) if moc else []
    lines = [title + "  (rows: observed alpha, columns: predicted fraction of L)",
             "alpha  " + "".join(f"{h:>8}" for h in horizons)]
    for alpha, row in moc.items():
        lines.append(f"{alpha:<7}" + "".join(f"{row[h]:>8.2f}" for h in horizons))
    return "\n".join(lines)
