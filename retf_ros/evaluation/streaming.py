"""Streaming evaluation: what the node does, offline, scored against ground truth.

Each clip is fed frame by frame (at its recorded stamps) through a StreamingPredictor, exactly
as the node feeds synchronised frames; every anticipation is scored at fixed leads (1, 2 and
4 s ahead by default): the label it anticipates that many seconds after its stamp against the
clip's ground-truth label at that time. "now" scores the current-action label at the stamp.
Predicting nothing at a lead (the transcript ended before it) counts as wrong, as NONE does in
the MoC protocol; frames labelled IGNORE (-1) and leads past the end of the clip are not scored.

Used by ``retf eval`` (the streaming part of its report) and ``retf bag eval``. The scorer also
accepts the node's published documents (parsed by retf_ros.client), so a replay through DDS is
scored by the same code.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np
from tqdm import tqdm

from retf_ros.errors import DataFormatError, RetfError
from retf_ros.fusion.erank import mutual_gain
from retf_ros.runtime.anticipation import Anticipation
from retf_ros.runtime.clip_frames import clip_frames, skeleton_converter
from retf_ros.runtime.predictor import StreamingPredictor
from retf_ros.runtime.stats import latency_distribution

if TYPE_CHECKING:
    from retf_ros.checkpoint import LoadedCheckpoint
    from retf_ros.client import AnticipationMessage
    from retf_ros.data.clipstore import Clip, ClipStore
    from retf_ros.runtime.health import ErankThresholds

DEFAULT_AHEAD_S = (1.0, 2.0, 4.0)
NOW = "now"


def lead_key(seconds: float) -> str:
    """JSON key of a lead: 1.0 -> "1", 0.5 -> "0.5"."""
    return f"{seconds:g}"


class _Counts:
    """Correct / total per ground-truth class for one lead."""

    def __init__(self, num_classes: int):
        self.correct = np.zeros(num_classes, dtype=np.int64)
        self.total = np.zeros(num_classes, dtype=np.int64)

    def add(self, truth: int, hit: bool) -> None:
        self.total[truth] += 1
        self.correct[truth] += int(hit)

    def accuracy(self) -> float:
        """Percent over all scored predictions; NaN when nothing was scored."""
        total = int(self.total.sum())
        return 100.0 * int(self.correct.sum()) / total if total else float("nan")

    def per_class(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.total > 0, 100.0 * self.correct / np.maximum(self.total, 1), np.nan)

    def moc(self) -> float:
        """Mean over the classes that occur of the per-class accuracy (percent)."""
        per_class = self.per_class()
        return float(np.nanmean(per_class)) if np.any(self.total > 0) else float("nan")


@dataclass
class StreamEvalResult:
    """Scores of a streaming evaluation. Accuracies in percent, NaN where nothing was scored."""

    classes: list[str]
    ahead_s: tuple[float, ...]
    counts: dict[str, _Counts]
    erank: dict
    inference_ms: list[float]
    info: dict = field(default_factory=dict)

    def accuracy(self) -> dict[str, float]:
        return {key: self.counts[key].accuracy() for key in self._lead_keys()}

    def _lead_keys(self) -> list[str]:
        return [lead_key(s) for s in self.ahead_s]

    def to_dict(self) -> dict:
        keys = self._lead_keys()
        latency = {}
        if self.inference_ms:   # per-window cost, as in the node (offline frames are encoded in batches)
            latency["inference_ms"] = latency_distribution(self.inference_ms)
        return {
            "accuracy": self.accuracy(),
            "moc": {k: self.counts[k].moc() for k in keys},
            "scored": {k: int(self.counts[k].total.sum()) for k in keys},
            "current": {"accuracy": self.counts[NOW].accuracy(), "moc": self.counts[NOW].moc(),
                        "scored": int(self.counts[NOW].total.sum())},
            "per_class": {k: {c: float(v) for c, v in zip(self.classes, self.counts[k].per_class())}
                          for k in [NOW, *keys]},
            "effective_rank": self.erank,
            "latency": latency,
            **self.info,
        }

    def format_table(self) -> str:
        """Human-readable summary (accuracy / MoC per lead, per-class accuracy, erank)."""
        info = self.info
        lines = [f"streaming evaluation: {info.get('clips', '?')} clips, {info.get('frames', '?')} frames, "
                 f"{info.get('predictions', '?')} predictions (window {info.get('window', '?')} @ "
                 f"{info.get('fps', '?')} fps, stride {info.get('stride', '?')}, horizon {info.get('horizon_s', '?')} s)",
                 f"{'ahead':>8} {'acc %':>7} {'MoC %':>7} {'scored':>7}"]
        for key in [NOW, *self._lead_keys()]:
            counts = self.counts[key]
            label = key if key == NOW else f"{key} s"
            lines.append(f"{label:>8} {counts.accuracy():7.2f} {counts.moc():7.2f} {int(counts.total.sum()):7d}")
        title = "per class acc %"
        width = max(len(title), *(len(c) for c in self.classes))
        lines.append(f"  {title:<{width}} " + " ".join(f"{(k if k == NOW else k + ' s'):>7}"
                                                      for k in [NOW, *self._lead_keys()]))
        for i, name in enumerate(self.classes):
            values = [self.counts[k].per_class()[i] for k in [NOW, *self._lead_keys()]]
            lines.append(f"  {name:<{width}} " + " ".join(f"{v:7.2f}" for v in values))
        erank = self.erank
        if erank.get("fused") is not None:
            lines.append(f"effective rank ({erank['convention']}): fused {erank['fused']:.2f}; "
                         f"status ok/warn/error {erank['status']['ok']}/{erank['status']['warn']}/"
                         f"{erank['status']['error']}")
            for m, before in erank["before"].items():
                after = erank["after"][m]
                if before is not None and after is not None:
                    lines.append(f"  {m:<10} before {before:7.2f}  after {after:7.2f}  gain {after - before:+.3f}")
            for pair, value in erank["mutual_gain"].items():
                lines.append(f"  mutual gain {pair}: {'n/a' if value is None else f'{value:.3f}'}")
        return "\n".join(lines)


class StreamScorer:
    """Accumulates scores of anticipations against the ground truth of the current recording.

    Call ``set_ground_truth`` for each clip / bag, then ``add_anticipation`` (runtime objects)
    or ``add_message`` (parsed node documents) for each prediction made on it.
    """

    def __init__(self, classes: Sequence[str], ahead_s: Iterable[float] = DEFAULT_AHEAD_S,
                 horizon_s: float | None = None):
        self.classes = list(classes)
        self.ahead_s = tuple(float(s) for s in ahead_s)
        if any(s <= 0 for s in self.ahead_s):
            raise RetfError(f"leads must be > 0 seconds, got {self.ahead_s}")
        self.horizon_s = horizon_s
        self._index = {name: i for i, name in enumerate(self.classes)}
        self.counts = {key: _Counts(len(self.classes)) for key in [NOW, *map(lead_key, self.ahead_s)]}
        self._before: dict[str, list[float]] = {}
        self._after: dict[str, list[float]] = {}
        self._fused: list[float] = []
        self._status = {"ok": 0, "warn": 0, "error": 0}
        self._pairs: list[str] = []
        self.inference_ms: list[float] = []
        self.predictions = 0
        self._stamps: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._end = 0.0

    def set_ground_truth(self, stamps: np.ndarray, labels: np.ndarray) -> None:
        """Per-frame ground truth of the recording the next predictions belong to.

        stamps (T,) seconds ascending; labels (T,) class ids into ``classes`` (-1 = IGNORE).
        A label holds from its frame's stamp until the next frame's.
        """
        stamps = np.asarray(stamps, dtype=np.float64)
        labels = np.asarray(labels)
        if stamps.ndim != 1 or stamps.shape != labels.shape or len(stamps) == 0:
            raise DataFormatError(f"ground truth needs equal-length 1-D stamps and labels, got "
                                  f"{stamps.shape} and {labels.shape}")
        if np.any(np.diff(stamps) < 0):
            raise DataFormatError("ground-truth stamps must not decrease")
        if labels.max(initial=-1) >= len(self.classes):
            raise DataFormatError(f"ground-truth label {int(labels.max())} outside the {len(self.classes)} classes")
        self._stamps, self._labels = stamps, labels
        # The last frame's label lasts one frame period past its stamp.
        period = float(np.median(np.diff(stamps))) if len(stamps) > 1 else 0.0
        self._end = float(stamps[-1]) + period

    def _truth_at(self, t: float) -> int | None:
        if self._stamps is None:
            raise RetfError("set_ground_truth must be called before scoring predictions")
        if t < self._stamps[0] or t >= self._end - 1e-9:
            return None
        index = int(np.searchsorted(self._stamps, t + 1e-9, side="right")) - 1
        label = int(self._labels[index])
        return label if label >= 0 else None

    def add(self, stamp: float, current_label: str, label_at: Callable[[float], str | None]) -> None:
        """Score one prediction: its current label at ``stamp`` and ``label_at(seconds_ahead)``."""
        self.predictions += 1
        truth = self._truth_at(stamp)
        if truth is not None:
            self.counts[NOW].add(truth, self._index.get(current_label) == truth)
        for seconds in self.ahead_s:
            if self.horizon_s is not None and seconds > self.horizon_s + 1e-9:
                continue
            truth = self._truth_at(stamp + seconds)
            if truth is not None:
                predicted = label_at(seconds)
                self.counts[lead_key(seconds)].add(truth, predicted is not None and self._index.get(predicted) == truth)

    def _add_erank(self, before: dict, after: dict, fused: float | None, status: str) -> None:
        for modality, value in before.items():
            self._before.setdefault(modality, [])
            self._after.setdefault(modality, [])
            if value is not None and after.get(modality) is not None:
                self._before[modality].append(float(value))
                self._after[modality].append(float(after[modality]))
        if fused is not None:
            self._fused.append(float(fused))
        self._status[status] += 1

    def add_anticipation(self, a: Anticipation) -> None:
        self.add(a.stamp, a.current_label, a.label_at)
        self._add_erank(a.erank.before, a.erank.after, a.erank.fused, a.erank.status)
        self.inference_ms.append(a.inference_ms)

    def add_message(self, msg: "AnticipationMessage") -> None:
        """Score a published document (parsed with retf_ros.client.parse_anticipation)."""
        def label_at(seconds: float) -> str | None:
            action = msg.action_at(seconds)
            return None if action is None else action.label
        self.add(msg.stamp, msg.current.label, label_at)
        self._add_erank(msg.erank.before, msg.erank.after, msg.erank.fused, msg.erank.status)
        self.inference_ms.append(msg.latency.inference_ms)

    def erank_summary(self) -> dict:
        """Means over predictions (uncentred); gains and mutual gains as in docs/method.md section 2:
        gain = mean after - mean before; mutual gain = harmonic mean of a pair's gains."""
        before = {m: float(np.mean(v)) if v else None for m, v in self._before.items()}
        after = {m: float(np.mean(v)) if v else None for m, v in self._after.items()}
        gain = {m: None if before[m] is None else after[m] - before[m] for m in before}
        modalities = list(before)
        pairs = {}
        for i, a in enumerate(modalities):
            for b in modalities[i + 1:]:
                pairs[f"{a}+{b}"] = None if gain[a] is None or gain[b] is None else mutual_gain(gain[a], gain[b])
        return {"convention": "uncentred", "before": before, "after": after, "gain": gain,
                "fused": float(np.mean(self._fused)) if self._fused else None,
                "mutual_gain": pairs, "status": dict(self._status)}

    def result(self, **info) -> StreamEvalResult:
        return StreamEvalResult(classes=self.classes, ahead_s=self.ahead_s, counts=self.counts,
                                erank=self.erank_summary(), inference_ms=list(self.inference_ms),
                                info={"predictions": self.predictions, **info})


def stream_clip(predictor: "StreamingPredictor", clip: "Clip", scorer: StreamScorer,
                convert_skeleton=None) -> int:
    """Feed one clip through ``predictor`` (from an empty buffer) and score every prediction.
    The predictions are those of feeding the frames one by one (``stream_many`` only batches
    the frame encoders). Returns the number of frames fed."""
    predictor.clear_cache()
    scorer.set_ground_truth(clip.stamps, clip.labels)
    for anticipation in predictor.stream_many(clip_frames(clip, predictor.modalities, convert_skeleton)):
        scorer.add_anticipation(anticipation)
    return clip.num_frames


def evaluate_streaming(checkpoint: "LoadedCheckpoint", store: "ClipStore", clip_ids: Sequence[str], *,
                       ahead_s: Iterable[float] = DEFAULT_AHEAD_S, device: str = "auto",
                       precision: str = "fp32", window: int | None = None, stride: int | None = None,
                       thresholds: "ErankThresholds | None" = None, progress: bool = True) -> StreamEvalResult:
    """Stream every clip of ``clip_ids`` through a StreamingPredictor and score it (see module doc).

    The store's classes must be the checkpoint's; its fps need not match (frames are resampled
    to the model's fps as in the node). Leads beyond the checkpoint's horizon are not scored.
    """
    if list(store.classes) != list(checkpoint.classes):
        raise RetfError(f"{store.root}: classes {store.classes} differ from the checkpoint's {checkpoint.classes}")
    predictor = StreamingPredictor(checkpoint, device=device, precision=precision, window=window,
                                   stride=stride, erank_thresholds=thresholds)
    usable = [m for m in predictor.modalities if m in store.modalities]
    if not usable:
        raise RetfError(f"{store.root} has none of the checkpoint's modalities {list(predictor.modalities)}")
    convert = skeleton_converter(store.skeleton_layout, predictor.skeleton_layout) if "skeleton" in usable else None
    scorer = StreamScorer(predictor.classes, ahead_s, horizon_s=predictor.horizon_s)
    frames = 0
    predictor.warm_up()
    for clip_id in tqdm(clip_ids, desc="streaming", unit="clip", file=sys.stderr, disable=not progress, leave=False):
        frames += stream_clip(predictor, store.load(clip_id, modalities=usable), scorer, convert)
    info = {"clips": len(clip_ids), "frames": frames, "window": predictor.window, "stride": predictor.stride,
            "fps": predictor.fps, "horizon_s": predictor.horizon_s, "device": predictor.device_name,
            "precision": precision, "modalities": usable,
            "not_scored_beyond_horizon": [s for s in scorer.ahead_s if s > predictor.horizon_s + 1e-9]}
    predictor.release()
    return scorer.result(**info)
