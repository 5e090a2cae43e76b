"""What one inference says about the future, and its ``retf_ros/anticipation/v1`` document.

The model's queries give (class, fraction of the horizon, confidence) in order; here they
become actions with start / end times in SECONDS AFTER THE STAMP over the fixed horizon
(docs/method.md section 7: the paper's horizon is unknown while streaming, a robot's is fixed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from retf_ros.client import SCHEMA
from retf_ros.runtime.health import ErankReport

NS = 1_000_000_000


@dataclass(frozen=True)
class AnticipatedAction:
    """One future action; ``start_s`` / ``end_s`` are seconds after the anticipation's stamp."""

    label: str
    class_id: int
    confidence: float
    start_s: float
    end_s: float


@dataclass
class Anticipation:
    """One prediction of the streaming predictor.

    ``stamp``: source stamp (s) of the newest frame in the window; ``stamp_ns`` the same, exact.
    ``window_frames`` tokens spanning ``window_span_s`` (newest minus oldest stamp) at ``fps``;
    ``present_frames``: checkpoint modality -> how many of those frames it was present in.
    ``modality_states``: checkpoint modality -> "ok" | "stale" | "missing" for the newest frame.
    ``current_*``: the model's label for the newest frame (segmentation head).
    ``actions``: ordered, contiguous, within [0, horizon_s].
    """

    stamp: float
    frame_id: str
    window_frames: int
    window_span_s: float
    fps: float
    modality_states: dict[str, str]
    current_label: str
    current_class_id: int
    current_confidence: float
    horizon_s: float
    actions: list[AnticipatedAction]
    erank: ErankReport
    inference_ms: float
    stamp_ns: int | None = None
    present_frames: dict[str, int] = field(default_factory=dict)

    def exact_stamp_ns(self) -> int:
        return self.stamp_ns if self.stamp_ns is not None else round(self.stamp * 1e9)

    def label_at(self, seconds_ahead: float) -> str | None:
        """Label anticipated ``seconds_ahead`` after the stamp; None where no action is predicted.
        Actions cover [start_s, end_s); the last one also covers its end (the horizon itself)."""
        for i, action in enumerate(self.actions):
            last = i == len(self.actions) - 1
            if action.start_s <= seconds_ahead < action.end_s or (last and seconds_ahead == action.end_s):
                return action.label
        return None


def decode_actions(decoded: Sequence[tuple[int, float, float]], classes: Sequence[str],
                   horizon_s: float) -> list[AnticipatedAction]:
    """(class_id, fraction of the horizon, confidence) per query, in order -> timed actions.

    Fractions (which sum to 1) are cumulated into start / end seconds; the last action ends
    exactly at the horizon, so float rounding of the sum never decides whether the horizon
    itself is covered (batched and frame-by-frame inference then score identically). Consecutive queries of the same class are one
    action for a planner: they merge, with the duration-weighted mean confidence. Example:
    horizon 4 s, fractions 0.25 and 0.75 -> [0, 1) s and [1, 4) s.
    """
    actions: list[AnticipatedAction] = []
    elapsed = 0.0
    last = len(decoded) - 1
    for i, (class_id, fraction, confidence) in enumerate(decoded):
        start = min(elapsed, horizon_s)
        elapsed += float(fraction) * horizon_s
        end = horizon_s if i == last else min(elapsed, horizon_s)
        previous = actions[-1] if actions else None
        if previous is not None and previous.class_id == int(class_id):
            span = end - previous.start_s
            weight = (previous.end_s - previous.start_s) / span if span > 0 else 0.5
            confidence = weight * previous.confidence + (1.0 - weight) * float(confidence)
            start = previous.start_s
            actions.pop()
        actions.append(AnticipatedAction(label=classes[class_id], class_id=int(class_id),
                                         confidence=float(confidence), start_s=start, end_s=end))
    return actions


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def anticipation_document(a: Anticipation, *, model_name: str, checkpoint_sha256: str,
                          end_to_end_ms: float | None) -> dict:
    """The ``retf_ros/anticipation/v1`` JSON document (a dict ready for ``json.dumps``).

    ``end_to_end_ms``: publish time minus source stamp, when the caller knows it (the node);
    None offline. Field-by-field description: docs/anticipation-json.md.
    """
    sec, nanosec = divmod(a.exact_stamp_ns(), NS)
    return {
        "schema": SCHEMA,
        "stamp": {"sec": sec, "nanosec": nanosec},
        "frame_id": a.frame_id,
        # span from float seconds: epoch stamps hold ~0.2 us, so microseconds are what is known
        "window": {"frames": a.window_frames, "span_s": round(a.window_span_s, 6), "fps": a.fps,
                   "present": dict(a.present_frames)},
        "modalities": dict(a.modality_states),
        "current": {"label": a.current_label, "class_id": a.current_class_id,
                    "confidence": a.current_confidence},
        "horizon_s": a.horizon_s,
        "actions": [{"label": x.label, "class_id": x.class_id, "confidence": x.confidence,
                     "start_s": x.start_s, "end_s": x.end_s} for x in a.actions],
        "erank": {
            "convention": a.erank.convention,
            "before": {m: _finite_or_none(v) for m, v in a.erank.before.items()},
            "after": {m: _finite_or_none(v) for m, v in a.erank.after.items()},
            "fused": _finite_or_none(a.erank.fused),
            "mutual_gain": {p: _finite_or_none(v) for p, v in a.erank.mutual_gain.items()},
            "status": a.erank.status,
            "messages": list(a.erank.messages),
        },
        "latency": {"inference_ms": a.inference_ms,
                    "end_to_end_ms": _finite_or_none(end_to_end_ms)},
        "model": {"name": model_name, "checkpoint_sha256": checkpoint_sha256},
    }


def document_stamp_ns(document: dict) -> int:
    """The source stamp of an anticipation document (or of its JSON) in nanoseconds, exactly."""
    return int(document["stamp"]["sec"]) * NS + int(document["stamp"]["nanosec"])
