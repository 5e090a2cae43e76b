"""The model-free anticipation prior: counting, no learning (issue 17).

Fitted on the label sequences of the TRAINING clips (at the model frame rate), it keeps, per
class, the lengths of its segments and how often each class followed it. Given the observed
labels of a clip (the alpha x L prefix) it anticipates:

1. the current action (the last observed label) goes on for its mean remaining length given
   how long it has already lasted: the mean of ``d - elapsed`` over the training segments of
   that class longer than ``elapsed`` (at least one frame; when no training segment was that
   long, the action ends after one more frame);
2. then the actions follow in the order most often seen in training (the most frequent
   successor of each class, ties to the lower class id), each for its mean length; a class
   never followed by another in training is held to the end.

Its predictions are (F,) class ids of the future frames, the form the MoC code scores
(``moc.score_future``, called by ``retf_ros.evaluation.prior_moc``), so `retf eval` and
`retf ablate` score it exactly like a model. Pure numpy: it needs the clip store's labels only,
never the weights or torch.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from retf_ros.training import windows


@dataclass
class TransitionPrior:
    """Segment statistics per class. ``durations[c]``: lengths (frames) of every training segment
    of class c; ``successors[c][d]``: how often class d directly followed class c."""

    num_classes: int
    durations: dict[int, list[int]] = field(default_factory=dict)
    successors: dict[int, dict[int, int]] = field(default_factory=dict)

    @classmethod
    def fit(cls, label_sequences: Iterable[np.ndarray], num_classes: int) -> "TransitionPrior":
        """Count segments of (N,) label sequences; IGNORE (-1) segments are dropped, so the
        segments on either side of one count as consecutive."""
        prior = cls(num_classes)
        for labels in label_sequences:
            kept = [(c, n) for c, n in windows.segments(labels) if c >= 0]
            for c, n in kept:
                prior.durations.setdefault(c, []).append(n)
            for (a, _), (b, _) in zip(kept, kept[1:]):
                followers = prior.successors.setdefault(a, {})
                followers[b] = followers.get(b, 0) + 1
        return prior

    def mean_length(self, action: int) -> int:
        """Mean segment length of ``action`` in frames (at least 1; 1 for a class never seen)."""
        lengths = self.durations.get(action)
        return max(1, int(round(float(np.mean(lengths))))) if lengths else 1

    def remaining(self, action: int, elapsed: int) -> int:
        """Mean remaining frames of an ``action`` segment that has lasted ``elapsed`` frames."""
        longer = [d - elapsed for d in self.durations.get(action, ()) if d > elapsed]
        return max(1, int(round(float(np.mean(longer))))) if longer else 1

    def next_action(self, action: int) -> int | None:
        """The class that most often followed ``action`` in training (None: never followed)."""
        followers = self.successors.get(action)
        if not followers:
            return None
        return min(followers, key=lambda c: (-followers[c], c))

    def rollout(self, action: int, elapsed: int, length: int) -> np.ndarray:
        """(length,) future class ids when ``action`` has lasted ``elapsed`` frames so far."""
        out = np.full(length, action, dtype=np.int64)
        start = self.remaining(action, elapsed)
        current = action
        while start < length:
            following = self.next_action(current)
            if following is None:
                out[start:] = current  # never followed in training: the last action is held
                break
            current = following
            stop = start + self.mean_length(current)
            out[start:stop] = current
            start = stop
        return out

    def predict(self, observed: np.ndarray, length: int) -> np.ndarray:
        """(length,) future class ids after the (N,) observed labels; NONE (``num_classes``,
        scored as wrong) when no observed frame has a label."""
        labelled = np.flatnonzero(np.asarray(observed) >= 0)
        if len(labelled) == 0:
            return np.full(length, self.num_classes, dtype=np.int64)
        action, elapsed = windows.segments(np.asarray(observed)[: labelled[-1] + 1])[-1]
        return self.rollout(action, elapsed, length)

    def to_dict(self) -> dict:
        """JSON-ready (class ids as strings), the form kept in checkpoint metadata."""
        return {"num_classes": self.num_classes,
                "durations": {str(c): list(map(int, d)) for c, d in sorted(self.durations.items())},
                "successors": {str(c): {str(d): int(n) for d, n in sorted(f.items())}
                               for c, f in sorted(self.successors.items())}}

    @classmethod
    def from_dict(cls, document: dict) -> "TransitionPrior":
        return cls(int(document["num_classes"]),
                   {int(c): [int(n) for n in d] for c, d in document["durations"].items()},
                   {int(c): {int(d): int(n) for d, n in f.items()} for c, f in document["successors"].items()})


def clip_labels(store, clip_id: str, fps: float) -> np.ndarray:
    """(N,) labels of one clip resampled to ``fps`` (the frames a model at that rate sees)."""
    clip = store.load(clip_id, [])
    return np.asarray(clip.labels, dtype=np.int64)[windows.resample_indices(np.asarray(clip.stamps), fps)]


def fit_prior(store, split: str | None, fps: float) -> TransitionPrior:
    """The prior of the training part of ``split`` at ``fps``."""
    ids = store.clip_ids(split, "train")
    return TransitionPrior.fit((clip_labels(store, c, fps) for c in ids), len(store.classes))
