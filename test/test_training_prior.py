"""The model-free prior (retf_ros/training/prior.py) on a clip store written here by hand: its
statistics, its predictions and its MoC equal what was computed by hand, and the anticipation
modes that combine it with a network (anticipation.py) form the frames documented."""
from __future__ import annotations

import numpy as np
import pytest

from retf_ros.data.clipstore import Clip, ClipStoreWriter
from retf_ros.training.anticipation import combined_prediction, recognised_current
from retf_ros.evaluation.prior_moc import evaluate_prior, prior_report
from retf_ros.training.prior import TransitionPrior, fit_prior

A, B, C = 0, 1, 2


def _labels(*runs: tuple[int, int]) -> np.ndarray:
    return np.concatenate([np.full(n, c, dtype=np.int64) for c, n in runs])


TRAIN = {"t1": _labels((A, 3), (B, 2), (C, 4)),
         "t2": _labels((A, 5), (B, 4), (C, 2)),
         "t3": _labels((A, 4), (C, 3))}
TEST = {"e1": _labels((A, 6), (B, 6), (C, 8))}


@pytest.fixture(scope="module")
def hand_store(tmp_path_factory):
    """Labels only matter to the prior; a 1-joint skeleton makes it a valid store. 1 fps: the
    model frames are the stored frames."""
    writer = ClipStoreWriter(tmp_path_factory.mktemp("prior_store"), ["a", "b", "c"],
                             {"fps": 1.0, "modalities": ["skeleton"], "default_split": "hand"})
    for clip_id, labels in {**TRAIN, **TEST}.items():
        n = len(labels)
        writer.add(Clip(clip_id=clip_id, stamps=np.arange(n, dtype=np.float64), labels=labels,
                        skeleton=np.zeros((n, 1, 3), dtype=np.float32)))
    writer.write_split("hand", {"train": list(TRAIN), "test": list(TEST)})
    return writer.finish()


def test_the_prior_counts_segment_lengths_and_successors_of_the_training_clips(hand_store):
    prior = fit_prior(hand_store, "hand", fps=1.0)
    assert prior.durations == {A: [3, 5, 4], B: [2, 4], C: [4, 2, 3]}
    assert prior.successors == {A: {B: 2, C: 1}, B: {C: 2}}
    assert [prior.mean_length(c) for c in (A, B, C)] == [4, 3, 3]
    assert prior.next_action(A) == B and prior.next_action(C) is None
    # Elapsed 4 frames of "a": only the 5-frame segment is longer, 1 frame remains.
    assert prior.remaining(A, 4) == 1 and prior.remaining(A, 0) == 4 and prior.remaining(A, 9) == 1


def test_the_prior_predicts_the_hand_computed_future(hand_store):
    prior = fit_prior(hand_store, "hand", fps=1.0)
    # alpha 0.2 of the 20-frame test clip observes "aaaa": a for 1 more frame, b for its mean
    # 3, c for its mean 3, and c (never followed) is held.
    observed = TEST["e1"][:4]
    assert prior.predict(observed, 10).tolist() == [A, B, B, B, C, C, C, C, C, C]
    assert prior.predict(np.full(3, -1), 2).tolist() == [3, 3]  # nothing labelled: NONE


def test_the_prior_moc_equals_the_hand_computed_scores(hand_store):
    prior = fit_prior(hand_store, "hand", fps=1.0)
    table = evaluate_prior(prior, [TEST["e1"]], alphas=(0.2,), horizons=(0.5,)).table()
    # Truth after frame 4 over 10 frames: a a b b b b b b c c; predicted a b b b c c c c c c:
    # a 1/2, b 2/6, c 2/2.
    assert table == {"0.2": {"0.5": pytest.approx((50.0 + 100.0 / 3 + 100.0) / 3)}}
    report = prior_report(hand_store, "hand", "test", 1.0)
    assert report["train_clips"] == 3 and report["fps"] == 1.0
    assert set(report["moc"]) == {"0.2", "0.3"} and set(report["moc"]["0.2"]) == {"0.1", "0.2", "0.3", "0.5"}
    assert report["moc"]["0.2"]["0.5"] == pytest.approx(table["0.2"]["0.5"])


def test_the_prior_survives_its_metadata_round_trip(hand_store):
    prior = fit_prior(hand_store, "hand", fps=1.0)
    assert TransitionPrior.from_dict(prior.to_dict()) == prior


def test_recognised_current_action_is_the_last_run_of_the_segmentation():
    idx = np.array([10, 11, 12, 13, 14, -1])
    assert recognised_current(np.array([A, A, B, B, B, C]), idx, observed=15) == (B, 3)  # slot 5 is padding
    assert recognised_current(np.array([C, C, C, C, C, A]), idx, observed=15) == (C, 5)


def test_network_then_prior_continues_the_networks_last_action_beyond_its_horizon():
    prior = TransitionPrior(3, durations={A: [4], B: [2], C: [3]}, successors={A: {B: 1}, B: {C: 1}})
    network = np.array([A, A, B, B, B, B, B, B])  # horizon 3 frames, then held
    combined = combined_prediction("network_then_prior", network, 3, prior, (A, 2), 8, none_class=3)
    # b has lasted 1 frame of its mean 2 (remaining 1), then c for 3, then c held.
    assert combined.tolist() == [A, A, B, B, C, C, C, C]
    assert combined_prediction("recognised_prior", network, 3, prior, (A, 2), 8, 3).tolist() == \
        [A, A, B, B, C, C, C, C]
    assert combined_prediction("network", network, 3, prior, (A, 2), 8, 3) is network
