"""Branch anticipation on the synthetic benchmark: is each cue-decided branch foreseen?

Every assembly cycle holds three branches whose outcome is announced by a cue that lives in
one modality only (retf_ros/data/synthetic/grammar.py). MoC mixes them with the actions any
modality can foresee (idle -> reach -> grasp -> carry is fixed); this score isolates them, so
an ablation shows which cues a model uses.

A branch is scored in an evaluated window when its cue was in view (the cycle began at or before
the last observed frame) and the branch is taken inside the anticipated future early enough for
its marker action (``grammar.BRANCH_MARKER``: screw for a red part, inspect for a raised thumb,
hand_over for a near tray) to start inside it had the outcome been "true": the reveal lies after
the last observed frame and at least ``MARKER_LEAD_S`` before the end of the future, and the
next cycle takes the same branch only after the future ends (its marker is decided by a cue
not yet in view). Then the marker is in the true future exactly when the outcome is true,
whatever the timing, so only the cue can tell. The window anticipates the branch correctly
when the predicted future contains the marker exactly when the outcome is true. The figure is
the balanced accuracy in percent (mean of the rate on true and on false outcomes), so always
guessing one outcome, or the more frequent one, scores 50. A model that cannot see the cue is
left with what the protocol itself leaks: it observes a fixed fraction of the clip, so the
number of observed frames tells the clip's length, and a longer cycle more often took the
longer branch outcomes.
"""
from __future__ import annotations

import numpy as np

from retf_ros.data.synthetic import grammar

# Seconds from a branch's reveal until its marker has surely started: a red part's place comes
# before the screw (at most 0.7 s x 1.25 spread / 0.8 slowest speed = 1.1 s), plus a margin.
MARKER_LEAD_S = 1.5


class BranchScore:
    """Accumulates, per branch and outcome, the scored windows and how many were right.

    annotations: {clip id: [cycle dicts with "start_s", "outcome" {branch: bool} and "reveal_s"
    {branch: seconds}]} (the synthetic store's ``cycles/`` files); classes: the checkpoint's
    class names; fps: model frame rate (frame k of a prepared clip lies at k / fps seconds
    after the clip's first frame).
    """

    def __init__(self, annotations: dict[str, list[dict]], classes: list[str], fps: float):
        self.annotations = annotations
        self.fps = float(fps)
        self.marker = {b: classes.index(m) for b, m in grammar.BRANCH_MARKER.items() if m in classes}
        # [branch][outcome] -> [correct, total]
        self.counts = {b: np.zeros((2, 2), dtype=np.int64) for b in self.marker}

    def update(self, clip_id: str, observed: int, predicted: np.ndarray) -> None:
        """One window: ``observed`` frames seen, (F,) predicted class ids of the F frames after them."""
        cycles = self.annotations.get(clip_id)
        if not cycles:
            return
        last_seen_s = (observed - 1) / self.fps
        end_s = (observed + len(predicted)) / self.fps
        for branch, marker in self.marker.items():
            for cycle, following in zip(cycles, [*cycles[1:], None]):
                reveal = cycle["reveal_s"][branch]
                # The next cycle's marker (decided by a cue not yet in view) must not be able to
                # enter the future either: it starts at that cycle's reveal at the earliest.
                alone = following is None or following["reveal_s"][branch] >= end_s
                if cycle["start_s"] <= last_seen_s < reveal and reveal + MARKER_LEAD_S <= end_s and alone:
                    outcome = bool(cycle["outcome"][branch])
                    cell = self.counts[branch][int(outcome)]
                    cell[0] += int(bool(np.any(predicted == marker)) == outcome)
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
