"""Stamp plausibility: is a frame's source stamp believable against the node's clock?

A publisher with a wrong clock (a frame stamped a day ahead, at 0, or seconds in the past)
must not reach the output, and must not make the synchroniser believe that time jumped (which
resets every buffer). Each frame's offset ``stamp - now`` (``now``: the node's clock, /clock
under ``use_sim_time``) is compared with the offset the gate accepts (0 at the start):

- more than ``max_ahead_s`` ahead of it: dropped, reason ``stamp_in_future``;
- more than ``max_behind_s`` behind it: dropped, reason ``stamp_too_old``;
- otherwise accepted.

A single frame never resets anything. Buffers are reset (and the frame accepted) only when
the whole stream moved:

- ``clock_back``: the node's clock went back by more than ``clock_jump_s`` (a looped bag
  replayed with /clock); the accepted offset returns to 0;
- ``stream_jump``: ``jump_frames`` consecutive frames were off by the same amount (within the
  same tolerances of each other) and among them was a frame of every input that delivered
  within the last ``active_s`` (wall time): the stream's clock really differs from the node's
  (a bag played without /clock, a camera whose clock was stepped). The gate then accepts that
  offset from this frame on.

Before the node's clock has started (``now`` 0: ``use_sim_time`` and no /clock yet) there is
nothing to judge against and every frame is accepted. Stamps and ``now`` are integer
nanoseconds; ``received`` is the caller's monotonic wall clock in seconds. Not thread-safe: the
node calls it from its subscription callbacks (one executor thread).
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from retf_ros.runtime.sync import SyncConfig

NS = 1_000_000_000
STAMP_DROP_REASONS = ("stamp_in_future", "stamp_too_old")
AGE_WINDOW_S = 2.0  # arrival ages are reported over the last two seconds (the input rate window)


@dataclass(frozen=True)
class StampPolicy:
    """Tolerances of :class:`StampGate`. Raises ValueError naming the field.

    The node sets ``clock_jump_s`` and ``active_s`` from its synchroniser's ``time_jump_s`` and
    ``max_age_s`` (retf_ros.runtime.settings.stamp_policy), whose defaults they share."""

    max_ahead_s: float = 0.5
    max_behind_s: float = 1.0
    jump_frames: int = 10
    clock_jump_s: float = SyncConfig.time_jump_s
    active_s: float = SyncConfig.max_age_s

    def __post_init__(self) -> None:
        for name in ("max_ahead_s", "max_behind_s", "clock_jump_s", "active_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.jump_frames < 2:
            raise ValueError(f"jump_frames must be >= 2 (one frame never resets), got {self.jump_frames}")


@dataclass(frozen=True)
class StampDecision:
    """``drop``: a reason from STAMP_DROP_REASONS, or None to accept the frame. ``reset``:
    "clock_back" or "stream_jump" when every buffer must be reset before this frame is used."""

    drop: str | None = None
    reset: str | None = None
    offset_s: float = 0.0  # this frame's stamp - the node's clock


@dataclass
class _Run:
    """Consecutive implausible frames that agree with each other."""

    offset_ns: int
    frames: int = 1
    modalities: set[str] = field(default_factory=set)


class StampGate:
    """See the module docstring."""

    def __init__(self, policy: StampPolicy):
        self.policy = policy
        self._ahead_ns = round(policy.max_ahead_s * NS)
        self._behind_ns = round(policy.max_behind_s * NS)
        self._clock_jump_ns = round(policy.clock_jump_s * NS)
        self.offset_ns = 0                     # the stream clock - node clock the gate accepts
        self._last_now_ns: int | None = None
        self._run: _Run | None = None
        self._last_seen: dict[str, float] = {}
        self._ages: dict[str, deque] = {}
        self.resets: Counter[str] = Counter()

    def check(self, modality: str, stamp_ns: int, now_ns: int, received: float) -> StampDecision:
        """Judge one frame's stamp (module docstring) and update the gate."""
        self._last_seen[modality] = received
        if now_ns <= 0:
            return StampDecision()
        reset = None
        if self._last_now_ns is not None and self._last_now_ns - now_ns > self._clock_jump_ns:
            reset = self._reset("clock_back", 0)
        self._last_now_ns = now_ns
        offset = stamp_ns - now_ns
        offset_s = offset / NS
        if self._plausible(offset, self.offset_ns):
            self._run = None
            self._record_age(modality, received, self.offset_ns - offset)
            return StampDecision(reset=reset, offset_s=offset_s)
        run = self._run
        if run is not None and self._plausible(offset, run.offset_ns):
            run.frames += 1
        else:
            run = self._run = _Run(offset)
        run.modalities.add(modality)
        active = {m for m, t in self._last_seen.items() if received - t <= self.policy.active_s}
        if run.frames >= self.policy.jump_frames and active <= run.modalities:
            reset = self._reset("stream_jump", offset)
            self._record_age(modality, received, 0)
            return StampDecision(reset=reset, offset_s=offset_s)
        drop = "stamp_in_future" if offset > self.offset_ns else "stamp_too_old"
        return StampDecision(drop=drop, reset=reset, offset_s=offset_s)

    def _plausible(self, offset_ns: int, accepted_ns: int) -> bool:
        return -self._behind_ns <= offset_ns - accepted_ns <= self._ahead_ns

    def _reset(self, reason: str, offset_ns: int) -> str:
        self.offset_ns = offset_ns
        self._run = None
        self._ages.clear()
        self.resets[reason] += 1
        return reason

    def _record_age(self, modality: str, received: float, age_ns: int) -> None:
        self._ages.setdefault(modality, deque(maxlen=512)).append((received, age_ns / NS))

    def max_age_s(self, modality: str, now: float) -> float | None:
        """The largest arrival age (node clock - stamp, relative to the accepted offset) of the
        frames of ``modality`` accepted in the last AGE_WINDOW_S of wall time; None without any."""
        recent = [age for t, age in self._ages.get(modality, ()) if now - t <= AGE_WINDOW_S]
        return max(recent) if recent else None
