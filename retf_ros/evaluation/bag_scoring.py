"""Scoring anticipation documents against a bag's per-frame ground truth.

Works on ``retf_ros/anticipation/v1`` documents, so an offline run (documents built in process)
and a live run (documents the node published) are scored by the same code.

- Accuracy k seconds ahead (now, 1, 2, 4 s): the streaming evaluation's own scorer
  (:class:`retf_ros.evaluation.streaming.StreamScorer`, the one ``retf eval`` uses), fed clip
  by clip with the bag's ground truth, on each clip's own time axis (:meth:`ClipTruth.seconds`:
  the clip store's stamps where the bag records them, else nanosecond offsets from the clip's
  first frame), so a bag exported from clips scores exactly what the streaming evaluation of
  those clips scores.
- MoC under the long-term anticipation protocol (docs/method.md section 6), where it applies: a
  ``stream`` checkpoint and a bag whose ground truth names clips and frame indices (an
  exported bag). Frames are counted at the model fps (a clip's L frames are the frames the
  predictor took), as ``retf eval`` counts them after resampling. For each clip and alpha,
  the prediction made at the last observed frame (alpha*L - 1) is expanded to frames exactly
  as ``retf eval`` does (:func:`retf_ros.evaluation.protocol.predicted_frames`) and accumulated
  with its MoC accumulator. It needs a prediction at (nearly) every model frame: stride 1 and
  nothing dropped; the camera-to-model resampling of the predictor and of ``retf eval`` may
  pick neighbouring frames, so the tables agree closely rather than exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from retf_ros.bags.frames import GroundTruthFrame
from retf_ros.client import AnticipationMessage, parse_anticipation
from retf_ros.evaluation.moc import ALPHAS, HORIZONS, MoCAccumulator, score_future
from retf_ros.evaluation.protocol import predicted_frames, task_spec_from_metadata
from retf_ros.evaluation.streaming import DEFAULT_AHEAD_S, StreamScorer
from retf_ros.runtime.anticipation import document_stamp_ns
from retf_ros.training import windows

NS = 1_000_000_000


@dataclass
class ReplayRun:
    """What one replay (offline or live) produced: anticipation documents plus bookkeeping.

    ``documents``: the retf_ros/anticipation/v1 dicts in stamp order. ``frames``: synchronised
    frame sets offered to the predictor (offline) or input frames published (live).
    ``counters``: skipped/taken frames, restarts, drops; ``receive_ns``: live only, the
    receive time of each document (same order) for latency.
    """

    mode: str
    documents: list[dict]
    frames: int
    wall_s: float
    device: str
    counters: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    end_to_end_ms: list[float] = field(default_factory=list)


@dataclass
class ClipTruth:
    clip: str
    stamps_ns: np.ndarray   # (T,) int64, increasing
    frames: np.ndarray      # (T,) int64 frame index within the clip (-1 when unknown)
    labels: list[str]       # (T,)
    clip_stamps: np.ndarray | None = None  # (T,) float64 s: the clip store's stamps, when recorded

    def seconds(self, stamps_ns: np.ndarray) -> np.ndarray:
        """Bag stamps -> the clip's own time axis (seconds).

        A stamp of one of the clip's frames maps to that frame's clip-store stamp exactly (the
        numbers an evaluation of the clip itself uses); other stamps are offset from the first
        frame in integer nanoseconds first, so epoch stamps lose no precision.
        """
        stamps_ns = np.asarray(stamps_ns, dtype=np.int64)
        origin = self.clip_stamps[0] if self.clip_stamps is not None else 0.0
        out = origin + (stamps_ns - self.stamps_ns[0]) / NS
        if self.clip_stamps is not None:
            at = np.searchsorted(self.stamps_ns, stamps_ns)
            exact = (at < len(self.stamps_ns)) & (self.stamps_ns[np.minimum(at, len(self.stamps_ns) - 1)] == stamps_ns)
            out[exact] = self.clip_stamps[at[exact]]
        return out


def split_clips(truth: list[GroundTruthFrame]) -> list[ClipTruth]:
    """Ground-truth frames -> clips (consecutive frames with the same clip name)."""
    clips: list[ClipTruth] = []
    start = 0
    for i in range(1, len(truth) + 1):
        if i == len(truth) or truth[i].clip != truth[start].clip:
            chunk = truth[start:i]
            recorded = all(g.clip_stamp is not None for g in chunk)
            clips.append(ClipTruth(chunk[0].clip, np.array([g.stamp_ns for g in chunk], dtype=np.int64),
                                   np.array([g.frame for g in chunk], dtype=np.int64), [g.label for g in chunk],
                                   np.array([g.clip_stamp for g in chunk], dtype=np.float64) if recorded else None))
            start = i
    return clips


def _frame_period_ns(clips: list[ClipTruth]) -> int:
    steps = np.concatenate([np.diff(c.stamps_ns) for c in clips if len(c.stamps_ns) > 1] or [np.array([NS // 30])])
    return int(np.median(steps))


def label_at(message, seconds_ahead: float) -> str | None:
    """Label a parsed document anticipates ``seconds_ahead`` after its stamp (0: the current one)."""
    if seconds_ahead == 0:
        return message.current.label
    action = message.action_at(seconds_ahead)
    return None if action is None else action.label


def _on_clip_axis(message, seconds: float):
    """The parsed document with its stamp read on the clip's time axis (``seconds``)."""
    @dataclass(frozen=True)
    class OnClipAxis(AnticipationMessage):
        clip_seconds: float = 0.0

        @property
        def stamp(self) -> float:
            return self.clip_seconds

    return OnClipAxis(**{f.name: getattr(message, f.name) for f in fields(message)}, clip_seconds=seconds)


def score_documents(documents: list[dict], clips: list[ClipTruth], classes: list[str], horizon_s: float,
                    ahead_s: tuple[float, ...] = DEFAULT_AHEAD_S) -> dict:
    """Accuracy now and k seconds ahead, MoC and per class (StreamEvalResult.to_dict) plus
    ``predictions_outside_ground_truth`` and ``labels_not_in_checkpoint`` (scored as IGNORE)."""
    scorer = StreamScorer(classes, ahead_s, horizon_s=horizon_s)
    index = {label: i for i, label in enumerate(classes)}
    unknown = sorted({label for clip in clips for label in clip.labels if label not in index})
    tolerance = _frame_period_ns(clips) // 2
    stamps = np.array([document_stamp_ns(d) for d in documents], dtype=np.int64)
    used = np.zeros(len(documents), dtype=bool)
    for clip in clips:
        scorer.set_ground_truth(clip.seconds(clip.stamps_ns), np.array([index.get(label, -1) for label in clip.labels]))
        inside = np.flatnonzero((stamps >= clip.stamps_ns[0] - tolerance) & (stamps <= clip.stamps_ns[-1] + tolerance)
                                & ~used)
        for i, seconds in zip(inside, clip.seconds(stamps[inside])):
            scorer.add_message(_on_clip_axis(parse_anticipation(documents[i]), float(seconds)))
        used[inside] = True
    result = scorer.result().to_dict()
    result.pop("latency", None)  # the report has its own latency section (inference and end to end)
    result["predictions_outside_ground_truth"] = int((~used).sum())
    result["labels_not_in_checkpoint"] = unknown
    return result


def protocol_moc(documents: list[dict], clips: list[ClipTruth], classes: list[str], metadata: dict) -> dict:
    """MoC table of docs/method.md section 6 from streamed predictions (module docstring), or
    {"applies": False, "reason": ...}.

    Frames are counted on the model's time grid, as ``retf eval`` counts them after resampling
    a clip to the model fps: the clip's predictions (one per frame the predictor took, with
    stride 1) are its L frames, their ground-truth labels the labels to anticipate.
    """
    if metadata.get("task", "stream") != "stream":
        return {"applies": False, "reason": f"checkpoint task {metadata.get('task')!r} is not a streaming task"}
    if not clips or any((c.frames < 0).any() for c in clips):
        return {"applies": False, "reason": "the bag's ground truth does not name clips and frame indices"}
    spec = task_spec_from_metadata(metadata)
    index = {label: i for i, label in enumerate(classes)}
    fps = float(metadata["fps"])
    stamps = np.array([document_stamp_ns(d) for d in documents], dtype=np.int64)
    order = np.argsort(stamps, kind="stable")
    accumulator = MoCAccumulator(len(classes), ALPHAS, HORIZONS)
    incomplete = []
    for clip in clips:
        inside = order[(stamps[order] >= clip.stamps_ns[0]) & (stamps[order] <= clip.stamps_ns[-1])]
        n = len(inside)
        expected = int(round((clip.stamps_ns[-1] - clip.stamps_ns[0]) / NS * fps)) + 1
        if n < 2 or n < 0.95 * expected:
            incomplete.append(clip.clip)
            continue
        # Ground truth of each predicted frame: the label holding at its stamp.
        at = np.searchsorted(clip.stamps_ns, stamps[inside], side="right") - 1
        labels = np.array([index.get(clip.labels[i], -1) for i in at], dtype=np.int64)  # -1: IGNORE
        longest = windows.future_length(n, max(windows.PROTOCOL_FUTURE, *HORIZONS))
        for alpha in ALPHAS:
            observed = windows.observed_length(n, alpha)
            document = documents[inside[observed - 1]]
            horizon = float(document["horizon_s"])
            transcript = [(index[a["label"]], (a["end_s"] - a["start_s"]) / horizon, a["confidence"])
                          for a in document["actions"]]
            score_future(accumulator, alpha, labels, predicted_frames(transcript, spec, longest))
    if not accumulator.total.any():
        return {"applies": False, "reason": "no clip has a prediction for (nearly) every model frame "
                                            "(frames dropped, or stride > 1)"}
    return {"applies": True, "table": accumulator.table(), "mean": accumulator.mean(),
            "clips": len(clips) - len(incomplete), "clips_without_every_prediction": incomplete}
