"""Approximate-time synchronisation of RGB, depth and skeleton frames, as plain logic.

message_filters is not available here, and its Python synchroniser runs user callbacks under
its lock; this one only stores frames (cheap, under a short lock) and lets a consumer take the
NEWEST complete set whenever it is ready, so a slow consumer never works through a backlog.

Matching, for a reference frame at stamp t (the ``reference`` modality, e.g. RGB):
- a camera modality matches with its frame nearest to t when |stamp - t| <= ``slop_s``;
- the skeleton is held zero-order: its newest frame with stamp <= t + slop_s matches while
  t - stamp <= ``skeleton_max_age_s`` (body trackers run slower than cameras);
- a modality without a match is "stale" when it has a frame within ``max_age_s`` of t and
  "missing" otherwise; its array is then left out (the model masks it).
A reference frame is emitted when every modality matched, or, under the ``available`` policy,
once waiting longer cannot help: each unmatched modality already has a frame newer than
t + slop_s, or the reference frame arrived ``wait_s`` ago (wall time; a partner delayed in
delivery still makes it, and a stopped one costs ``wait_s`` of latency). Under ``require_all``
such a frame is dropped ("unmatched"). Older reference frames passed over by a newer emitted
one count as "superseded". If the reference modality itself stops for ``max_age_s``, the first
other modality that still arrives serves as the reference.

Time: a stamp more than ``time_jump_s`` behind a modality's newest stamp (a looped bag,
``use_sim_time`` restarting) resets every buffer ("time_jump_reset", offline bag evaluation);
with ``reset_on_time_jump`` False (the node, whose retf_ros.runtime.stamps gate decides resets
from the stream as a whole) it is dropped as out of order like a smaller step back
("stamp_backwards"); a repeated stamp is dropped too ("duplicate_stamp").
Every drop is counted per modality and reason, with the conversion drops the caller adds via
:meth:`ApproximateTimeSynchronizer.count_drop`.

Intake per modality (diagnostics): frames received (every message that reached the caller,
dropped ones included), accepted (stored for matching), taken (distinct frames that went out
in a set) and lost (sent by a publisher but never received, as the caller counts them with
:meth:`ApproximateTimeSynchronizer.count_lost`), each with its rate over RATE_WINDOW_S.

Times: stamps are integer nanoseconds (exact source stamps); ``received``/``now`` are the
caller's monotonic wall clock in seconds. All public methods are thread-safe.
"""
from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from retf_ros.runtime.frames import MODALITIES, FrameSet

POLICIES = ("require_all", "available")
RATE_WINDOW_S = 2.0  # input rates are measured over the last two seconds of arrivals
NS = 1_000_000_000


@dataclass(frozen=True)
class SyncConfig:
    """Settings of :class:`ApproximateTimeSynchronizer`. Raises ValueError naming the field."""

    modalities: tuple[str, ...] = MODALITIES
    reference: str = "rgb"
    slop_s: float = 0.03
    max_age_s: float = 0.5
    skeleton_max_age_s: float = 0.2
    queue_size: int = 5
    policy: str = "available"
    time_jump_s: float = 1.0
    wait_s: float = 0.1
    reset_on_time_jump: bool = True

    def __post_init__(self) -> None:
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if not self.modalities or unknown:
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {self.modalities}")
        if self.reference not in self.modalities:
            raise ValueError(f"reference {self.reference!r} is not one of the modalities {self.modalities}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        for name in ("slop_s", "max_age_s", "skeleton_max_age_s", "time_jump_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.wait_s < 0:
            raise ValueError(f"wait_s must be >= 0, got {self.wait_s}")
        if self.queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {self.queue_size}")


@dataclass
class _Frame:
    stamp_ns: int
    data: np.ndarray
    frame_id: str
    received: float


@dataclass
class ModalityStats:
    """What diagnostics report per modality (rates in Hz over RATE_WINDOW_S, counts since
    the synchroniser was built)."""

    rate_hz: float                 # accepted frames (usable: converted, plausible, in order)
    last_stamp_ns: int | None
    last_received: float | None
    frames: int                    # received, dropped ones included
    received_hz: float = 0.0
    taken_hz: float = 0.0
    lost_hz: float = 0.0
    accepted: int = 0
    taken: int = 0
    lost: int = 0


def _times() -> deque:
    return deque(maxlen=512)


@dataclass
class _Arrivals:
    times: deque = field(default_factory=_times)           # every frame received
    accepted_times: deque = field(default_factory=_times)
    taken_times: deque = field(default_factory=_times)
    lost_times: deque = field(default_factory=_times)      # one entry per lost frame (capped)
    last_stamp_ns: int | None = None
    last_taken_ns: int | None = None
    frames: int = 0
    accepted: int = 0
    taken: int = 0
    lost: int = 0


class ApproximateTimeSynchronizer:
    def __init__(self, config: SyncConfig):
        self.config = config
        self._lock = threading.Lock()
        self._queues = {m: deque(maxlen=config.queue_size) for m in config.modalities}
        self._arrivals = {m: _Arrivals() for m in config.modalities}
        self._drops: Counter[tuple[str, str]] = Counter()
        self._last_emitted_ns: int | None = None
        self._slop_ns = round(config.slop_s * NS)
        self._max_age_ns = round(config.max_age_s * NS)
        self._skeleton_age_ns = round(config.skeleton_max_age_s * NS)
        self.resets = 0

    # ---- input side (subscription callbacks) -------------------------------------------
    def add(self, modality: str, stamp_ns: int, data: np.ndarray, frame_id: str, received: float) -> bool:
        """Store one converted frame. Returns False when it was dropped (and counted)."""
        with self._lock:
            arrivals = self._arrivals[modality]
            arrivals.times.append(received)
            arrivals.frames += 1
            last = arrivals.last_stamp_ns
            if last is not None and stamp_ns <= last:
                if self.config.reset_on_time_jump and last - stamp_ns > round(self.config.time_jump_s * NS):
                    self._reset_locked()
                    self._drops[(modality, "time_jump_reset")] += 1
                else:
                    self._drops[(modality, "duplicate_stamp" if stamp_ns == last else "stamp_backwards")] += 1
                    return False
            arrivals.last_stamp_ns = stamp_ns
            arrivals.accepted += 1
            arrivals.accepted_times.append(received)
            self._queues[modality].append(_Frame(stamp_ns, data, frame_id, received))
            return True

    def count_drop(self, modality: str, reason: str, received: float) -> None:
        """Count a frame the caller dropped before it reached :meth:`add` (e.g. bad encoding)."""
        with self._lock:
            self._drops[(modality, reason)] += 1
            self._arrivals[modality].times.append(received)
            self._arrivals[modality].frames += 1

    def count_lost(self, modality: str, count: int, received: float) -> None:
        """Count ``count`` frames a publisher sent that never reached the caller (noticed at
        ``received``: a gap in its publication sequence numbers)."""
        with self._lock:
            arrivals = self._arrivals[modality]
            arrivals.lost += count
            arrivals.lost_times.extend([received] * min(count, arrivals.lost_times.maxlen))

    def reset(self) -> None:
        with self._lock:
            self._reset_locked()

    def _reset_locked(self) -> None:
        for queue in self._queues.values():
            queue.clear()
        for arrivals in self._arrivals.values():
            arrivals.last_stamp_ns = None
        self._last_emitted_ns = None
        self.resets += 1

    # ---- output side (the worker) ------------------------------------------------------
    def take(self, now: float) -> FrameSet | None:
        """The newest reference frame that can be emitted now, with its partners, or None."""
        with self._lock:
            reference = self._effective_reference(now)
            if reference is None:
                return None
            queue = self._queues[reference]
            candidates = [f for f in reversed(queue)
                          if self._last_emitted_ns is None or f.stamp_ns > self._last_emitted_ns]
            for position, candidate in enumerate(candidates):
                parts, states, complete, decidable = self._match(reference, candidate, now)
                if complete or (decidable and self.config.policy == "available"):
                    passed_over = len(candidates) - position - 1
                    if passed_over:
                        self._drops[(reference, "superseded")] += passed_over
                    self._last_emitted_ns = candidate.stamp_ns
                    self._count_taken(parts, now)
                    return self._frame_set(reference, candidate, parts, states)
                if decidable:
                    queue.remove(candidate)
                    self._drops[(reference, "unmatched")] += 1
            return None

    def _count_taken(self, parts: dict[str, _Frame], now: float) -> None:
        """Each distinct frame once (a held skeleton may go out in several sets)."""
        for modality, frame in parts.items():
            arrivals = self._arrivals[modality]
            if frame.stamp_ns != arrivals.last_taken_ns:
                arrivals.last_taken_ns = frame.stamp_ns
                arrivals.taken += 1
                arrivals.taken_times.append(now)

    def _effective_reference(self, now: float) -> str | None:
        order = [self.config.reference] + [m for m in self.config.modalities if m != self.config.reference]
        for modality in order:
            queue = self._queues[modality]
            if queue and now - queue[-1].received <= self.config.max_age_s:
                return modality
        return None

    def _match(self, reference: str, candidate: _Frame, now: float):
        parts: dict[str, _Frame] = {reference: candidate}
        states: dict[str, str] = {reference: "ok"}
        complete = decidable = True
        t = candidate.stamp_ns
        for modality in self.config.modalities:
            if modality == reference:
                continue
            queue = self._queues[modality]
            match = self._held(queue, t) if modality == "skeleton" else self._nearest(queue, t, self._slop_ns)
            if match is not None:
                parts[modality], states[modality] = match, "ok"
                continue
            complete = False
            nearest = self._nearest(queue, t, self._max_age_ns)
            states[modality] = "stale" if nearest is not None else "missing"
            may_still_arrive = (not any(f.stamp_ns > t + self._slop_ns for f in queue)
                                and now - candidate.received < self.config.wait_s)
            decidable = decidable and not may_still_arrive
        return parts, states, complete, decidable

    @staticmethod
    def _nearest(queue, t: int, tolerance_ns: int) -> _Frame | None:
        best = min(queue, key=lambda f: abs(f.stamp_ns - t), default=None)
        return best if best is not None and abs(best.stamp_ns - t) <= tolerance_ns else None

    def _held(self, queue, t: int) -> _Frame | None:
        """Zero-order hold: the newest frame not later than t + slop, if young enough."""
        for frame in reversed(queue):
            if frame.stamp_ns <= t + self._slop_ns:
                return frame if t - frame.stamp_ns <= self._skeleton_age_ns else None
        return None

    @staticmethod
    def _frame_set(reference: str, candidate: _Frame, parts: dict[str, _Frame], states: dict[str, str]) -> FrameSet:
        newest_ns = max(f.stamp_ns for f in parts.values())
        return FrameSet(stamp=newest_ns / NS, stamp_ns=newest_ns, frame_id=candidate.frame_id,
                        states=states, **{m: f.data for m, f in parts.items()})

    # ---- diagnostics ---------------------------------------------------------------------
    def drops(self) -> dict[str, int]:
        """Drop counts keyed "modality/reason", e.g. "depth/encoding"."""
        with self._lock:
            return {f"{m}/{r}": n for (m, r), n in sorted(self._drops.items())}

    def stats(self, now: float) -> dict[str, ModalityStats]:
        """Per modality: rates over the last RATE_WINDOW_S of accepted, received (dropped frames
        included, they arrived), taken and lost frames, their counts, the newest accepted stamp,
        and when its newest frame arrived."""
        with self._lock:
            out = {}
            for modality, arrivals in self._arrivals.items():
                queue = self._queues[modality]
                out[modality] = ModalityStats(
                    rate_hz=_rate(arrivals.accepted_times, now),
                    last_stamp_ns=arrivals.last_stamp_ns,
                    last_received=queue[-1].received if queue else None,
                    frames=arrivals.frames, received_hz=_rate(arrivals.times, now),
                    taken_hz=_rate(arrivals.taken_times, now), lost_hz=_count_rate(arrivals.lost_times, now),
                    accepted=arrivals.accepted, taken=arrivals.taken, lost=arrivals.lost)
            return out


def _rate(times, now: float) -> float:
    """Arrivals per second over the window; decays towards 0 once a stream stops."""
    recent = [t for t in times if now - t <= RATE_WINDOW_S]
    if len(recent) < 2 or now <= recent[0]:
        return 0.0
    return (len(recent) - 1) / (now - recent[0])


def _count_rate(times, now: float) -> float:
    """Events per second over the whole window (losses come in bursts noticed at one instant)."""
    return sum(1 for t in times if now - t <= RATE_WINDOW_S) / RATE_WINDOW_S
