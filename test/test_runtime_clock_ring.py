"""Resampling onto the model's time grid (ModelClock) and the token ring buffer (TokenRing)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from retf_ros.runtime.clock import ModelClock, Tick
from retf_ros.runtime.ring import TokenRing


def taken_indices(clock: ModelClock, stamps) -> list[int]:
    return [i for i, s in enumerate(stamps) if clock.offer(float(s)) is not Tick.SKIP]


def test_30hz_camera_at_15fps_model_takes_every_other_frame():
    stamps = np.arange(60) / 30.0 + 1000.0
    assert taken_indices(ModelClock(15.0), stamps) == list(range(0, 60, 2))


def test_jittered_60hz_camera_keeps_the_model_rate():
    rng = np.random.default_rng(3)
    stamps = np.arange(600) / 60.0 + rng.uniform(-0.003, 0.003, 600)  # 10 s, +-3 ms jitter
    taken = stamps[taken_indices(ModelClock(15.0), stamps)]
    assert len(taken) == 150
    intervals = np.diff(taken)
    # every taken frame is one camera frame (16.7 ms) at most from the ideal 66.7 ms spacing
    assert intervals.min() > 1 / 15 - 1 / 60 - 0.0061 and intervals.max() < 1 / 15 + 1 / 60 + 0.0061
    assert np.mean(intervals) == pytest.approx(1 / 15, abs=0.001)


def test_camera_at_the_model_rate_with_jitter_takes_every_frame():
    rng = np.random.default_rng(4)
    stamps = np.arange(45) / 15.0 + rng.uniform(-0.01, 0.01, 45)  # +-15% of the period
    assert taken_indices(ModelClock(15.0), stamps) == list(range(45))


def test_camera_slower_than_the_model_takes_every_frame():
    stamps = np.arange(20) / 10.0
    assert taken_indices(ModelClock(15.0), stamps) == list(range(20))


def test_lost_camera_frames_re_anchor_the_grid_at_the_next_frame():
    clock = ModelClock(15.0)
    stamps = [i / 30.0 for i in range(10)] + [i / 30.0 for i in range(15, 30)]  # frames 10-14 lost
    taken = [round(s * 30) for s in stamps if clock.offer(s) is not Tick.SKIP]
    assert taken == [0, 2, 4, 6, 8, 15, 17, 19, 21, 23, 25, 27, 29]


def test_duplicate_stamp_is_skipped():
    clock = ModelClock(15.0)
    assert clock.offer(5.0) is Tick.TAKE
    assert clock.offer(5.0) is Tick.SKIP


def test_time_going_backwards_restarts_the_grid():
    clock = ModelClock(15.0)
    for i in range(30):
        clock.offer(10.0 + i / 30.0)
    assert clock.offer(10.0) is Tick.RESTART
    assert clock.restarts == 1
    # after the restart the grid starts at the new stamp: 30 Hz -> every other frame again
    assert [clock.offer(10.0 + i / 30.0) for i in range(1, 5)] == [Tick.SKIP, Tick.TAKE, Tick.SKIP, Tick.TAKE]


def test_a_gap_longer_than_max_gap_restarts_and_a_shorter_one_does_not():
    clock = ModelClock(15.0, max_gap_s=2.0)
    clock.offer(0.0)
    assert clock.offer(1.5) is Tick.TAKE
    assert clock.offer(4.0) is Tick.RESTART
    assert clock.restarts == 1


def test_invalid_fps_is_refused():
    with pytest.raises(ValueError, match="fps must be > 0"):
        ModelClock(0.0)


def _token(value: float, channels: int = 3) -> torch.Tensor:
    return torch.full((channels,), value)


def test_ring_returns_frames_oldest_first_and_wraps():
    ring = TokenRing(4, ("rgb", "depth"), 3, torch.device("cpu"))
    for i in range(6):
        ring.push({"rgb": _token(i), "depth": _token(10 + i)}, stamp=0.1 * i)
    tokens, present, stamps = ring.window()
    assert len(ring) == 4
    assert tokens["rgb"].shape == (1, 4, 3)
    assert tokens["rgb"][0, :, 0].tolist() == [2.0, 3.0, 4.0, 5.0]
    assert tokens["depth"][0, :, 0].tolist() == [12.0, 13.0, 14.0, 15.0]
    assert present["rgb"].tolist() == [[True] * 4]
    np.testing.assert_allclose(stamps, [0.2, 0.3, 0.4, 0.5])
    assert ring.newest_stamp() == pytest.approx(0.5)


def test_ring_partial_fill_and_absent_modality():
    ring = TokenRing(5, ("rgb", "skeleton"), 2, torch.device("cpu"))
    ring.push({"rgb": _token(1, 2), "skeleton": None}, stamp=1.0)
    ring.push({"rgb": _token(2, 2), "skeleton": _token(7, 2)}, stamp=2.0)
    tokens, present, stamps = ring.window()
    assert tokens["skeleton"][0].tolist() == [[0.0, 0.0], [7.0, 7.0]]
    assert present["skeleton"].tolist() == [[False, True]]
    assert present["rgb"].tolist() == [[True, True]]
    assert stamps.tolist() == [1.0, 2.0]


def test_ring_overwrites_presence_of_a_reused_slot_and_clears():
    ring = TokenRing(2, ("rgb",), 1, torch.device("cpu"))
    ring.push({"rgb": _token(1, 1)}, stamp=1.0)
    ring.push({"rgb": _token(2, 1)}, stamp=2.0)
    ring.push({"rgb": None}, stamp=3.0)   # reuses slot 0
    tokens, present, _ = ring.window()
    assert present["rgb"].tolist() == [[True, False]]
    assert tokens["rgb"][0, :, 0].tolist() == [2.0, 0.0]
    ring.clear()
    assert len(ring) == 0 and ring.newest_stamp() is None
    ring.push({"rgb": _token(5, 1)}, stamp=9.0)
    assert ring.window()[0]["rgb"][0, :, 0].tolist() == [5.0]
