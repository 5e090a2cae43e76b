"""What one training or evaluation sample observes and what it must predict.

Everything here works on a clip already resampled to the model's frame rate (see
:func:`resample_indices`), as plain numpy index arithmetic, so the same rules serve training,
validation and `retf eval`. The two tasks (docs/training.md):

- ``stream`` (what the node does): observe the last ``window`` frames ending at frame ``end``
  (frames before the clip start are padding), predict the segments of the next
  ``horizon`` frames as (class, fraction of the horizon).
- ``protocol`` (docs/method.md section 6): observe the first ``alpha * L`` frames, subsampled to at
  most ``window`` frames, predict the next ``0.5 * L`` frames as fractions.

Observed frames are left-aligned in the window: oldest observed frame first, padding (index
-1) at the end, which is the layout ``R3DModel`` expects (a frame's positional embedding does not
depend on how much padding follows it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD = -1            # index of a padded (non-existent) frame in a window
IGNORE = -1         # target value the losses skip
PROTOCOL_FUTURE = 0.5  # beta of docs/method.md section 6: predict the next 0.5 L frames


def resample_indices(stamps: np.ndarray, fps: float) -> np.ndarray:
    """Source-frame indices that give a clip's timeline at ``fps``.

    stamps: (T,) seconds, non-decreasing. Returns (N,) int64: for every model tick
    ``stamps[0] + k / fps`` the newest source frame at or before it (a sensor that skipped
    frames repeats the last one, as the streaming node would see it).
    """
    stamps = np.asarray(stamps, dtype=np.float64)
    if stamps.ndim != 1 or len(stamps) == 0:
        raise ValueError("stamps must be a non-empty 1-D array")
    span = float(stamps[-1] - stamps[0])
    count = int(np.floor(span * fps + 1e-6)) + 1
    ticks = stamps[0] + np.arange(count, dtype=np.float64) / fps
    # The small tolerance keeps a frame stamped a hair after its tick (float rounding).
    return np.searchsorted(stamps, ticks + 1e-6, side="right").astype(np.int64) - 1


def segments(labels: np.ndarray) -> list[tuple[int, int]]:
    """Run-length transcript of a label sequence: [(class, length), ...] in order."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return []
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(labels)]])
    return [(int(labels[s]), int(e - s)) for s, e in zip(starts, ends)]


@dataclass(frozen=True)
class FutureTargets:
    """Query targets of one sample.

    classes: (Q,) int64, class id per query, ``none_class`` after the last segment,
        IGNORE for the remaining queries. durations: (Q,) float32 fractions of the horizon.
    valid: (Q,) bool, the query slots holding a real segment (duration loss).
    """

    classes: np.ndarray
    durations: np.ndarray
    valid: np.ndarray


def future_targets(future_labels: np.ndarray, num_queries: int, none_class: int) -> FutureTargets:
    """Turn the labels of the future frames into query targets (FUTR style).

    The first segments fill the queries in order with their length as a fraction of the
    whole future; one NONE query ends the transcript; later queries are ignored. A future
    with more than ``num_queries`` segments keeps the first ``num_queries`` (their fractions
    then sum to less than 1, and no NONE fits).
    """
    transcript = segments(future_labels)
    total = max(len(future_labels), 1)
    classes = np.full(num_queries, IGNORE, dtype=np.int64)
    durations = np.zeros(num_queries, dtype=np.float32)
    valid = np.zeros(num_queries, dtype=bool)
    kept = transcript[:num_queries]
    for q, (cls, length) in enumerate(kept):
        classes[q] = cls
        durations[q] = length / total
        valid[q] = True
    if len(kept) < num_queries:
        classes[len(kept)] = none_class
    return FutureTargets(classes, durations, valid)


def stream_window(end: int, window: int, speed: float = 1.0) -> np.ndarray:
    """(window,) indices of the frames observed by a window whose newest frame is ``end``.

    Near the clip start there are fewer than ``window`` frames: they come first, PAD after.
    ``speed`` != 1 (training augmentation): the window reads the clip played at that speed,
    frames ``end - round(speed * k)``.
    """
    kept = end - _played(window, speed)[::-1]
    return _left_aligned(kept[kept >= 0], window)


def stream_future(end: int, horizon: int, speed: float = 1.0) -> np.ndarray:
    """(horizon,) indices of the anticipated frames after ``end`` (the clip played at ``speed``:
    ``end + round(speed * j)``, j = 1..horizon)."""
    return end + _played(horizon + 1, speed)[1:]


def _played(count: int, speed: float) -> np.ndarray:
    """(count,) int64 offsets round(speed * k), k = 0..count-1: the frames of a clip played at
    ``speed`` (above 1 skips frames, below 1 repeats some)."""
    return np.round(speed * np.arange(count)).astype(np.int64)


def _left_aligned(kept: np.ndarray, window: int) -> np.ndarray:
    idx = np.full(window, PAD, dtype=np.int64)
    idx[:len(kept)] = kept
    return idx


def stream_end_range(num_frames: int, horizon: int) -> tuple[int, int] | None:
    """Inclusive range of window end points whose whole horizon lies inside the clip.

    None when the clip is too short to hold one observed frame and a full horizon.
    """
    last = num_frames - 1 - horizon
    if last < 0:
        return None
    return 0, last


def observed_length(num_frames: int, alpha: float) -> int:
    """Frames observed under the protocol for observation ratio ``alpha`` (at least 1)."""
    return max(1, min(num_frames - 1, int(round(alpha * num_frames))))


def future_length(num_frames: int, ratio: float) -> int:
    """Frames covered by a horizon of ``ratio * L`` (at least 1)."""
    return max(1, int(round(ratio * num_frames)))


def protocol_window(observed: int, window: int, speed: float = 1.0) -> np.ndarray:
    """(window,) indices of the observed prefix ``[0, observed)`` subsampled to at most
    ``window`` frames (evenly spaced, keeping the first and newest frame), left-aligned.
    ``speed`` != 1 (training augmentation): the prefix as played at that speed, i.e. in
    ``round(observed / speed)`` frames before the subsampling to ``window``."""
    count = min(window, max(1, int(round(observed / speed))))
    if count == observed:
        kept = np.arange(observed, dtype=np.int64)
    else:
        kept = np.round(np.linspace(0, observed - 1, count)).astype(np.int64)
    return _left_aligned(kept, window)


def gather_labels(labels: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Labels of the frames ``idx`` (PAD -> IGNORE), (len(idx),) int64."""
    out = np.full(len(idx), IGNORE, dtype=np.int64)
    valid = idx >= 0
    out[valid] = np.asarray(labels)[idx[valid]]
    return out


def expand_transcript(transcript: list[tuple[int, float]], length: int, fill: int) -> np.ndarray:
    """Frames of a decoded transcript [(class, fraction), ...] over ``length`` frames.

    Each segment gets ``round(fraction * length)`` frames in order (cumulative rounding, so
    no frame is lost); the last segment fills the remainder. An empty transcript gives
    ``fill`` everywhere (predicted NONE, which scoring counts wrong).
    """
    out = np.full(length, fill, dtype=np.int64)
    if not transcript:
        return out
    total = sum(max(f, 0.0) for _, f in transcript)
    start = 0
    cumulative = 0.0
    for i, (cls, fraction) in enumerate(transcript):
        cumulative += max(fraction, 0.0) / total if total > 0 else 1.0 / len(transcript)
        stop = length if i == len(transcript) - 1 else int(round(cumulative * length))
        out[start:stop] = cls
        start = max(start, stop)
    return out
