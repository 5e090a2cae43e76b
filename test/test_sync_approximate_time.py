"""The approximate-time synchroniser as plain logic: matching, hold, policies, drops, resets."""
from __future__ import annotations

import numpy as np
import pytest

from retf_ros.runtime.sync import ApproximateTimeSynchronizer, SyncConfig

MS = 1_000_000


def _sync(**kwargs) -> ApproximateTimeSynchronizer:
    return ApproximateTimeSynchronizer(SyncConfig(**kwargs))


def _add(sync, modality, stamp_ms, received, value=None):
    data = np.full((2, 2), stamp_ms if value is None else value, np.float32)
    return sync.add(modality, stamp_ms * MS, data, "cam", received)


def test_matches_frames_within_slop_and_stamps_the_newest_source_stamp():
    sync = _sync(slop_s=0.01)
    _add(sync, "rgb", 1000, 0.0)
    _add(sync, "depth", 1004, 0.001)
    _add(sync, "skeleton", 998, 0.002)
    frames = sync.take(now=0.003)
    assert frames is not None
    assert frames.stamp_ns == 1004 * MS and frames.stamp == pytest.approx(1.004)
    assert frames.states == {"rgb": "ok", "depth": "ok", "skeleton": "ok"}
    assert frames.rgb[0, 0] == 1000 and frames.depth[0, 0] == 1004 and frames.skeleton[0, 0] == 998
    assert frames.frame_id == "cam"
    assert sync.take(now=0.004) is None  # nothing newer


def test_waits_for_a_partner_that_may_still_arrive():
    sync = _sync(slop_s=0.02, wait_s=0.1)
    _add(sync, "rgb", 1000, 0.0)
    _add(sync, "skeleton", 1000, 0.0)
    assert sync.take(now=0.05) is None  # a delayed depth message could still come
    _add(sync, "depth", 1001, 0.06)
    assert sync.take(now=0.07).states["depth"] == "ok"


def test_available_policy_emits_after_waiting_and_marks_modality_missing():
    sync = _sync(slop_s=0.02, wait_s=0.1, policy="available")
    _add(sync, "rgb", 1000, 0.0)
    _add(sync, "skeleton", 1000, 0.0)
    assert sync.take(now=0.09) is None
    frames = sync.take(now=0.1)
    assert frames.states == {"rgb": "ok", "depth": "missing", "skeleton": "ok"}
    assert frames.depth is None and frames.state("depth") == "missing"


def test_unmatched_modality_with_a_recent_frame_is_stale_not_missing():
    sync = _sync(slop_s=0.02, max_age_s=0.5)
    _add(sync, "depth", 700, 0.0)
    _add(sync, "skeleton", 1000, 0.3)
    _add(sync, "rgb", 1000, 0.3)
    frames = sync.take(now=0.4)
    assert frames.states["depth"] == "stale" and frames.depth is None


def test_require_all_never_emits_an_incomplete_set_and_counts_unmatched():
    sync = _sync(slop_s=0.02, wait_s=0.02, policy="require_all", modalities=("rgb", "depth"))
    for i in range(3):
        _add(sync, "rgb", 1000 + 33 * i, 0.033 * i)
    assert sync.take(now=0.1) is None
    assert sync.drops() == {"rgb/unmatched": 3}
    _add(sync, "rgb", 1100, 1.0)
    _add(sync, "depth", 1100, 1.0)
    assert sync.take(now=1.0).stamp_ns == 1100 * MS


def test_a_partner_newer_than_the_slop_window_settles_the_decision_without_waiting():
    sync = _sync(slop_s=0.02, modalities=("rgb", "depth"))
    _add(sync, "rgb", 1000, 0.0)
    _add(sync, "depth", 1100, 0.0)
    frames = sync.take(now=0.0)
    assert frames.states["depth"] == "stale"


def test_skeleton_is_held_zero_order_up_to_its_max_age():
    sync = _sync(slop_s=0.01, wait_s=0.01, skeleton_max_age_s=0.2, modalities=("rgb", "skeleton"))
    _add(sync, "skeleton", 1000, 0.0, value=7)
    _add(sync, "rgb", 1150, 0.15)
    held = sync.take(now=0.15)
    assert held.states["skeleton"] == "ok" and held.skeleton[0, 0] == 7
    assert held.stamp_ns == 1150 * MS  # the newest frame's stamp, not the held skeleton's
    _add(sync, "rgb", 1250, 0.25)
    too_old = sync.take(now=0.3)
    assert too_old.states["skeleton"] == "stale" and too_old.skeleton is None


def test_slow_consumer_gets_the_newest_set_and_older_ones_count_as_superseded():
    sync = _sync(slop_s=0.01, queue_size=10, modalities=("rgb", "depth"))
    for i in range(6):
        _add(sync, "rgb", 1000 + 33 * i, 0.033 * i)
        _add(sync, "depth", 1000 + 33 * i, 0.033 * i)
    frames = sync.take(now=0.2)
    assert frames.stamp_ns == (1000 + 33 * 5) * MS
    assert sync.drops() == {"rgb/superseded": 5}
    assert sync.take(now=0.2) is None


def test_small_step_back_is_dropped_large_jump_back_resets():
    sync = _sync(slop_s=0.01, time_jump_s=1.0, modalities=("rgb", "depth"))
    _add(sync, "rgb", 5000, 0.0)
    _add(sync, "depth", 5000, 0.0)
    assert not _add(sync, "rgb", 4900, 0.01)
    assert not _add(sync, "rgb", 5000, 0.02)
    assert sync.take(now=0.03).stamp_ns == 5000 * MS
    assert _add(sync, "rgb", 1000, 0.04)  # a looped bag starts again
    assert sync.resets == 1
    _add(sync, "depth", 1000, 0.04)
    frames = sync.take(now=0.05)
    assert frames.stamp_ns == 1000 * MS and frames.states["depth"] == "ok"
    assert sync.drops() == {"rgb/stamp_backwards": 1, "rgb/duplicate_stamp": 1, "rgb/time_jump_reset": 1}


def test_reference_falls_back_when_the_reference_stream_stops():
    sync = _sync(slop_s=0.01, wait_s=0.01, max_age_s=0.5, modalities=("rgb", "depth"))
    _add(sync, "rgb", 1000, 0.0)
    _add(sync, "depth", 1000, 0.0)
    assert sync.take(now=0.0).states == {"rgb": "ok", "depth": "ok"}
    _add(sync, "depth", 2000, 1.0)
    frames = sync.take(now=1.05)
    assert frames.stamp_ns == 2000 * MS
    assert frames.states == {"depth": "ok", "rgb": "missing"}


def test_conversion_drops_count_as_received_but_not_as_usable():
    sync = _sync()
    for i in range(11):
        sync.count_drop("depth", "encoding", received=0.1 * i)
    stats = sync.stats(now=1.0)
    assert sync.drops() == {"depth/encoding": 11}
    assert stats["depth"].received_hz == pytest.approx(10.0) and stats["depth"].rate_hz == 0.0
    assert stats["depth"].frames == 11 and stats["depth"].accepted == 0 and stats["depth"].last_stamp_ns is None
    assert stats["rgb"].rate_hz == 0.0 and stats["rgb"].received_hz == 0.0


def test_without_reset_on_time_jump_a_large_step_back_is_an_out_of_order_drop():
    sync = _sync(slop_s=0.01, time_jump_s=1.0, modalities=("rgb",), reset_on_time_jump=False)
    assert _add(sync, "rgb", 5000, 0.0)
    assert not _add(sync, "rgb", 1000, 0.01)
    assert sync.resets == 0 and sync.drops() == {"rgb/stamp_backwards": 1}
    assert sync.take(now=0.02).stamp_ns == 5000 * MS


def test_intake_counts_received_accepted_taken_and_lost_frames():
    sync = _sync(slop_s=0.01, queue_size=10, modalities=("rgb", "skeleton"), skeleton_max_age_s=2.0)
    _add(sync, "skeleton", 1000, 0.0)
    for i in range(10):  # 10 rgb frames at 10 Hz, the worker takes every other one
        _add(sync, "rgb", 1000 + 100 * i, 0.1 * i)
        if i % 2:
            assert sync.take(now=0.1 * i).states == {"rgb": "ok", "skeleton": "ok"}
    sync.count_drop("rgb", "encoding", received=0.95)
    sync.count_lost("rgb", 3, received=0.95)
    stats = sync.stats(now=1.0)["rgb"]
    assert (stats.frames, stats.accepted, stats.taken, stats.lost) == (11, 10, 5, 3)
    assert stats.lost_hz == pytest.approx(3 / 2.0)  # three losses over the two-second window
    assert stats.taken_hz == pytest.approx(4 / 0.9) and stats.rate_hz == pytest.approx(9 / 1.0)
    # the one skeleton frame went out in all five sets (held): a distinct frame counts once
    assert sync.stats(now=1.0)["skeleton"].taken == 1


def test_rate_decays_after_a_stream_stops():
    sync = _sync()
    for i in range(30):
        _add(sync, "rgb", 1000 + 33 * i, i / 30)
    assert sync.stats(now=29 / 30)["rgb"].rate_hz == pytest.approx(30.0, rel=0.05)
    assert sync.stats(now=2.5)["rgb"].rate_hz < 15
    assert sync.stats(now=4.0)["rgb"].rate_hz == 0.0


def test_queues_stay_bounded():
    sync = _sync(queue_size=3, modalities=("rgb",))
    for i in range(100):
        _add(sync, "rgb", 1000 + i, 0.0)
    assert len(sync._queues["rgb"]) == 3


@pytest.mark.parametrize("kwargs, field", [
    (dict(reference="depth", modalities=("rgb",)), "reference"),
    (dict(policy="sometimes"), "policy"),
    (dict(slop_s=0.0), "slop_s"),
    (dict(queue_size=0), "queue_size"),
    (dict(wait_s=-0.1), "wait_s"),
    (dict(modalities=("thermal",)), "modalities"),
])
def test_invalid_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SyncConfig(**kwargs)
