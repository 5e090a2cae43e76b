"""Branch anticipation score: which windows score a branch, and the balanced accuracy."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from retf_ros.data.synthetic import grammar
from retf_ros.evaluation.branches import MARKER_LEAD_S, BranchScore

CLASSES = list(grammar.CLASSES)
K = {name: i for i, name in enumerate(CLASSES)}
FPS = 5.0
# One cycle starting at 0 s: colour taken at 4 s, gesture at 8 s, tray at 10 s.
REVEAL = {"colour": 4.0, "gesture": 8.0, "tray": 10.0}


def _cycle(start_s=0.0, **outcome):
    return {"index": 0, "start_s": start_s, "end_s": 12.0, "reveal_s": REVEAL,
            "outcome": {"colour": True, "gesture": False, "tray": False, **outcome}}


def _frames(*runs):
    return np.concatenate([np.full(n, K[name], dtype=np.int64) for name, n in runs])


def test_a_branch_is_scored_when_its_marker_would_start_inside_the_future():
    assert MARKER_LEAD_S == 1.5
    score = BranchScore({"a": [_cycle()]}, CLASSES, FPS)
    # Observed 10 frames (last at 1.8 s), future 20 frames (to 6 s): colour (4 s + 1.5 s) only.
    prediction = _frames(("reach", 10), ("place", 5), ("screw", 5))
    score.update("a", 10, prediction)
    summary = score.summary()
    assert [summary[b]["windows"] for b in grammar.BRANCHES] == [1, 0, 0]
    # A future ending 1 s after the reveal is too short to show the marker: not scored.
    score.update("a", 10, prediction[:15])  # to 5 s
    assert score.summary()["colour"]["windows"] == 1
    # A branch taken before the last observed frame is not scored again: 4.8 s .. 9.8 s scores gesture.
    score.update("a", 25, _frames(("screw", 25)))
    summary = score.summary()
    assert [summary[b]["windows"] for b in grammar.BRANCHES] == [1, 1, 0]
    # Clips without annotations are ignored.
    score.update("b", 10, prediction)
    assert score.summary()["colour"]["windows"] == 1


def test_a_cycle_that_starts_after_the_observation_is_not_scored():
    score = BranchScore({"a": [_cycle(start_s=3.0)]}, CLASSES, FPS)
    score.update("a", 10, _frames(("idle", 30)))
    assert all(v["windows"] == 0 for v in score.summary().values())


def test_balanced_accuracy_averages_the_two_outcomes():
    red, blue = {"a": [_cycle(colour=True)]}, {"a": [_cycle(colour=False)]}
    with_screw = _frames(("reach", 10), ("screw", 10))
    without = _frames(("reach", 10), ("carry", 10))
    score = BranchScore(red, CLASSES, FPS)
    # Red part: 3 windows, 2 foresee the screw. Blue part: 1 window, correctly without it.
    for prediction in (with_screw, with_screw, without):
        score.update("a", 10, prediction)
    score.annotations = blue
    score.update("a", 10, without)
    colour = score.summary()["colour"]
    assert colour["cue"] == "rgb" and colour["windows"] == 4
    assert colour["balanced_accuracy"] == pytest.approx(100.0 * (2 / 3 + 1) / 2)


def test_always_guessing_one_outcome_scores_fifty_and_one_outcome_alone_is_undefined():
    with_screw = _frames(("reach", 10), ("screw", 10))
    score = BranchScore({"red": [_cycle(colour=True)], "blue": [_cycle(colour=False)]}, CLASSES, FPS)
    for clip in ("red", "red", "red", "blue"):
        score.update(clip, 10, with_screw)
    assert score.summary()["colour"]["balanced_accuracy"] == pytest.approx(50.0)
    only_one = BranchScore({"a": [_cycle()]}, CLASSES, FPS)
    only_one.update("a", 10, with_screw)
    assert math.isnan(only_one.summary()["colour"]["balanced_accuracy"])


def test_the_true_future_of_two_cycle_plans_anticipates_every_branch():
    """The score's premise: in every scored window the marker is in the true future exactly
    when the outcome is true, even when the next cycle's branches lie near the future's end."""
    from retf_ros.data.synthetic.generate import cycle_annotations
    from retf_ros.training import windows

    rng = np.random.default_rng(5)
    annotations, futures = {}, []
    for i in range(120):
        plan = grammar.plan_sequence(rng, 0.0, rng.uniform(0.8, 1.25), cycle_count=2)
        labels = plan.labels_at(np.arange(0.0, plan.duration_s, 1.0 / FPS))
        annotations[str(i)] = cycle_annotations(plan)
        for alpha in (0.2, 0.3, 0.5):
            observed = windows.observed_length(len(labels), alpha)
            future = windows.future_length(len(labels), windows.PROTOCOL_FUTURE)
            futures.append((str(i), observed, labels[observed:observed + future]))
    score = BranchScore(annotations, CLASSES, FPS)
    for clip_id, observed, truth in futures:
        score.update(clip_id, observed, truth)
    summary = score.summary()
    assert all(summary[b]["windows"] >= 30 for b in grammar.BRANCHES), summary
    assert all(summary[b]["balanced_accuracy"] == 100.0 for b in grammar.BRANCHES), summary


def test_evaluation_of_a_synthetic_store_reports_every_branch(tmp_path):
    import retf_ros
    from retf_ros.cli import main
    from retf_ros.data.clipstore import ClipStore
    from retf_ros.evaluation.eval_report import evaluate_checkpoint, format_report

    store_dir = tmp_path / "cycles"
    assert main(["synth", "--out", str(store_dir), "--sequences", "4", "--cycles", "1", "--seed", "2",
                 "--width", "64", "--height", "48", "--workers", "1"]) == 0
    store = ClipStore(store_dir)
    demo = Path(retf_ros.__file__).parent / "checkpoints" / "demo"  # the synthetic task's classes
    report = evaluate_checkpoint(demo, store, store.clip_ids("default", "train"), "cpu", cache_dir=tmp_path / "c",
                                 streaming=False)
    branches = report["branches"]
    assert set(branches) == set(grammar.BRANCHES)
    assert {b: v["cue"] for b, v in branches.items()} == grammar.CUE_MODALITY
    assert sum(v["windows"] for v in branches.values()) > 0
    for value in branches.values():
        acc = value["balanced_accuracy"]
        assert math.isnan(acc) or 0.0 <= acc <= 100.0
    text = format_report({**report, "runs": [report], "data": {"split": "default", "part": "train", "clips": 2}})
    assert "cue-decided branches anticipated" in text and "colour (rgb)" in text
