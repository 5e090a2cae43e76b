"""Resampling the camera's frame stream onto the model's time grid (its training fps).

A frame is taken when its source stamp reaches the next model tick; ticks advance by exactly
1/fps from the previous tick, so the grid keeps its phase and the model rate holds on average
whatever the camera rate (30 Hz -> 15 Hz takes every other frame; a 60 Hz camera gives every
fourth). Stamps jitter: a frame counts as reaching a tick when it is at most half a camera
period early (estimated from recent stamps, capped at half a model period), so the frame
nearest each tick is the one taken. After lost frames (the first frame is later than a tick
by more than that) the grid re-anchors at that frame, so the window's spacing stays 1/fps.
Time jumping backwards (a looped bag, a restarted ``/clock``) or forwards by more than
``max_gap_s`` restarts the grid; the caller resets its buffers.
"""
from __future__ import annotations

import enum
from collections import deque


class Tick(enum.Enum):
    TAKE = "take"          # on the grid: encode this frame
    SKIP = "skip"          # between ticks (camera faster than the model)
    RESTART = "restart"    # time jumped: buffers must be reset, then this frame is taken


class ModelClock:
    """Decides, frame by frame, which source stamps land on the model's time grid."""

    _RECENT = 8  # inter-frame intervals kept for the camera period estimate

    def __init__(self, fps: float, max_gap_s: float | None = None):
        if not fps > 0:
            raise ValueError(f"model fps must be > 0, got {fps}")
        self.period = 1.0 / fps
        self.max_gap_s = max_gap_s
        self.restarts = 0
        self._intervals: deque[float] = deque(maxlen=self._RECENT)
        self._last_offered: float | None = None
        self._next_tick: float | None = None

    def reset(self) -> None:
        self._intervals.clear()
        self._last_offered = None
        self._next_tick = None

    def tolerance(self) -> float:
        """How early a frame may be and still count as reaching the tick (seconds)."""
        if not self._intervals:
            return 0.25 * self.period
        # The mean of recent intervals: jitter only enters through the two end stamps.
        camera_period = sum(self._intervals) / len(self._intervals)
        return 0.5 * min(camera_period, self.period)

    def offer(self, stamp: float) -> Tick:
        """Classify the frame with source stamp ``stamp`` (seconds) and advance the grid."""
        last = self._last_offered
        jumped = last is not None and (stamp < last or (self.max_gap_s is not None and stamp - last > self.max_gap_s))
        if jumped:
            self.reset()
            self.restarts += 1
        elif last is not None and stamp > last:
            self._intervals.append(stamp - last)
        self._last_offered = stamp
        if self._next_tick is None:
            self._next_tick = stamp + self.period
            return Tick.RESTART if jumped else Tick.TAKE
        tolerance = self.tolerance()
        if stamp < self._next_tick - tolerance:
            return Tick.SKIP
        if stamp > self._next_tick + tolerance:
            # Late by more than the jitter allows: frames were lost. Re-anchor the grid here so
            # the window's spacing stays 1/fps instead of catching up with a burst of frames.
            self._next_tick = stamp + self.period
        else:
            # On time within jitter: the next tick follows the grid, keeping its phase.
            while self._next_tick - tolerance <= stamp:
                self._next_tick += self.period
        return Tick.TAKE
