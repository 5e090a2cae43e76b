"""Branch anticipation on the synthetic benchmark: is each cue-decided branch foreseen?

Every assembly cycle holds three branches whose outcome is announced by a cue that lives in
one modality only (retf_ros/data/synthetic/grammar.py). MoC mixes them with the actions any
modality can foresee (idle -> reach -> grasp -> carry is fixed); this score isolates them, so
an ablation shows which cues a model uses.

A branch is scored in an evaluated window when its cue was in view (the cycle began at or before
the last observed frame) and it is taken inside the anticipated future (its reveal time lies
after the last observed frame and before the end of the future). The
window anticipates it correctly when the predicted future contains the branch's marker action
(``grammar.BRANCH_MARKER``: screw for a red part, inspect for a raised thumb, hand_over for a
near tray) exactly when the true future does. The figure is the balanced accuracy in percent
(mean of the rate on windows whose truth holds the marker and the rate on those that do not),
so always guessing one outcome, or the more frequent one, scores 50.
"""
from __future__ import annotations

import numpy as np

from retf_ros.data.synthetic import grammar


class BranchScore:
    """Accumulates, per branch, the windows with and without the marker and how many were right.

    annotations: {clip id: [cycle dicts with "reveal_s" {branch: seconds}]} (the synthetic
    store's ``cycles/`` files); classes: the checkpoint's class names; fps: model frame rate
    (frame k of a prepared clip lies at k / fps seconds after the clip's first frame).
    """

    def __init__(self, annotations: dict[str, list[dict]], classes: list[str], fps: float):
        self.annotations = annotations
        self.fps = float(fps)
        self.marker = {b: classes.index(m) for b, m in grammar.BRANCH_MARKER.items() if m in classes}
        # [branch][truth has marker] -> [correct, total]
        self.counts = {b: np.zeros((2, 2), dtype=np.int64) for b in self.marker}

    def update(self, clip_id: str, observed: int, predicted: np.ndarray, truth: np.ndarray) -> None:
        """One window: ``observed`` frames seen, (F,) predicted and true class ids of the next F frames."""
        cycles = self.annotations.get(clip_id)
        if not cycles:
            return
        start_s = (observed - 1) / self.fps
        end_s = (observed + len(truth)) / self.fps
        for branch, marker in self.marker.items():
            if not any(c["start_s"] <= start_s < c["reveal_s"][branch] < end_s for c in cycles):
                continue
            expected = bool(np.any(truth == marker))
            foreseen = bool(np.any(predicted == marker))
            cell = self.counts[branch][int(expected)]
            cell[0] += int(foreseen == expected)
            cell[1] += 1

    def summary(self) -> dict:
        """{branch: {"cue": modality, "balanced_accuracy": pct or NaN, "windows": n}}; the balanced
        accuracy is NaN unless both outcomes were scored."""
        out = {}
        for branch, counts in self.counts.items():
            totals = counts[:, 1]
            rates = counts[:, 0] / np.maximum(totals, 1)
            balanced = float(100.0 * rates.mean()) if (totals > 0).all() else float("nan")
            out[branch] = {"cue": grammar.CUE_MODALITY[branch], "balanced_accuracy": balanced,
                           "windows": int(totals.sum())}
        return out
