"""Typed Python client for the ``retf_ros/anticipation/v1`` JSON document.

The anticipation node publishes one JSON document per inference on ``~/anticipation``
(std_msgs/String). A planner parses it with :func:`parse_anticipation` and gets typed
dataclasses; :func:`validate_anticipation` lists what is wrong with a document instead of
raising. Field-by-field description: docs/anticipation-json.md.

Standard library only (plus :mod:`retf_ros.errors`), so planners can use it without torch.

    from retf_ros.client import parse_anticipation
    msg = parse_anticipation(ros_string_msg.data)
    nxt = msg.next_action()
    if nxt is not None and nxt.confidence > 0.6:
        plan_around(nxt.label, start_in=nxt.start_s, until=nxt.end_s)
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from retf_ros.errors import RetfError

SCHEMA = "retf_ros/anticipation/v1"
MODALITY_STATES = ("ok", "stale", "missing")
HEALTH_STATUSES = ("ok", "warn", "error")
ERANK_CONVENTIONS = ("uncentred", "centred")
# Consecutive actions share their boundary; allow float rounding from the JSON round trip.
TIME_TOLERANCE_S = 1e-6


class AnticipationFormatError(RetfError, ValueError):
    """A document that is not a valid retf_ros/anticipation/v1 document; ``problems`` lists why."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid retf_ros/anticipation/v1 document: " + "; ".join(problems))


@dataclass(frozen=True)
class Action:
    """One anticipated action; ``start_s`` / ``end_s`` are seconds after the document's stamp."""

    label: str
    class_id: int
    confidence: float
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class CurrentAction:
    """What the person is doing at the stamp (the model's label for the newest frame)."""

    label: str
    class_id: int
    confidence: float


@dataclass(frozen=True)
class Window:
    """The observed window the prediction used: ``frames`` tokens at ``fps`` covering ``span_s``;
    ``present``: modality -> in how many of those frames it was present (fresh)."""

    frames: int
    span_s: float
    fps: float
    present: dict[str, int]


@dataclass(frozen=True)
class EffectiveRanks:
    """Effective-rank health of the window. ``None`` where a modality had too few present frames.

    ``before`` / ``after``: per modality, erank of its tokens before / after the RTF exchange;
    ``fused``: erank of the fused tokens; ``mutual_gain``: per modality pair "a+b", the harmonic
    mean of the two rank gains (0 when either gain <= 0). ``convention`` says whether the token
    matrices were mean-centred before the SVD ("uncentred" is the paper's).
    """

    convention: str
    before: dict[str, float | None]
    after: dict[str, float | None]
    fused: float | None
    mutual_gain: dict[str, float | None]
    status: str
    messages: tuple[str, ...]


@dataclass(frozen=True)
class Latency:
    inference_ms: float
    end_to_end_ms: float | None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    checkpoint_sha256: str


@dataclass(frozen=True)
class AnticipationMessage:
    """A parsed retf_ros/anticipation/v1 document."""

    schema: str
    stamp_sec: int
    stamp_nanosec: int
    frame_id: str
    window: Window
    modalities: dict[str, str]
    current: CurrentAction
    horizon_s: float
    actions: tuple[Action, ...]
    erank: EffectiveRanks
    latency: Latency
    model: ModelInfo

    @property
    def stamp(self) -> float:
        """Source stamp in seconds (float; ``stamp_sec``/``stamp_nanosec`` are exact)."""
        return self.stamp_sec + self.stamp_nanosec * 1e-9

    @property
    def stamp_ns(self) -> int:
        return self.stamp_sec * 1_000_000_000 + self.stamp_nanosec

    @property
    def degraded(self) -> bool:
        """True when some modality was stale or missing for this prediction."""
        return any(state != "ok" for state in self.modalities.values())

    def action_at(self, seconds_ahead: float) -> Action | None:
        """The action anticipated ``seconds_ahead`` after the stamp (None: nothing predicted there).
        Actions cover [start_s, end_s); the last one also covers its end (the horizon itself)."""
        for i, action in enumerate(self.actions):
            last = i == len(self.actions) - 1
            if action.start_s <= seconds_ahead < action.end_s or (last and seconds_ahead == action.end_s):
                return action
        return None

    def next_action(self) -> Action | None:
        """The first anticipated action whose label differs from the current one."""
        for action in self.actions:
            if action.label != self.current.label:
                return action
        return None


# ---------------------------------------------------------------------------------------------
# Validation: a hand-written check of the schema (no jsonschema dependency). Each helper
# appends "path: problem" strings, so one call reports every problem of a document.


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return "null" if value is None else type(value).__name__


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, problem: str) -> None:
        self.problems.append(f"{path}: {problem}")

    def object(self, doc: Any, path: str, keys: tuple[str, ...]) -> bool:
        """True when ``doc`` is an object holding every key of ``keys`` (reports each missing one)."""
        if not isinstance(doc, dict):
            self.fail(path, f"expected an object, got {_describe(doc)}")
            return False
        complete = True
        for key in keys:
            if key not in doc:
                self.fail(f"{path}.{key}" if path else key, "missing")
                complete = False
        return complete

    def number(self, value: Any, path: str, *, minimum: float | None = None,
               maximum: float | None = None, exclusive_minimum: bool = False,
               nullable: bool = False) -> None:
        if value is None and nullable:
            return
        if not _is_number(value):
            self.fail(path, f"expected a finite number{' or null' if nullable else ''}, got {_describe(value)}")
            return
        if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
            self.fail(path, f"{value} must be {'>' if exclusive_minimum else '>='} {minimum}")
        if maximum is not None and value > maximum:
            self.fail(path, f"{value} must be <= {maximum}")

    def integer(self, value: Any, path: str, *, minimum: int | None = None) -> None:
        if not _is_int(value):
            self.fail(path, f"expected an integer, got {_describe(value)}")
        elif minimum is not None and value < minimum:
            self.fail(path, f"{value} must be >= {minimum}")

    def string(self, value: Any, path: str, *, choices: tuple[str, ...] | None = None,
               non_empty: bool = False) -> None:
        if not isinstance(value, str):
            self.fail(path, f"expected a string, got {_describe(value)}")
        elif choices is not None and value not in choices:
            self.fail(path, f"{value!r} is not one of {', '.join(choices)}")
        elif non_empty and not value:
            self.fail(path, "must not be empty")

    def number_map(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.fail(path, f"expected an object, got {_describe(value)}")
            return
        for key, item in value.items():
            self.number(item, f"{path}.{key}", minimum=0.0, nullable=True)


def _check_labelled(c: _Checker, doc: Any, path: str, extra: tuple[str, ...] = ()) -> None:
    if not c.object(doc, path, ("label", "class_id", "confidence") + extra):
        return
    c.string(doc["label"], f"{path}.label", non_empty=True)
    c.integer(doc["class_id"], f"{path}.class_id", minimum=0)
    c.number(doc["confidence"], f"{path}.confidence", minimum=0.0, maximum=1.0)


def _check_actions(c: _Checker, actions: Any, horizon_s: Any) -> None:
    if not isinstance(actions, list):
        c.fail("actions", f"expected an array, got {_describe(actions)}")
        return
    previous_end: float | None = 0.0  # None: the previous action's times were already reported
    for i, action in enumerate(actions):
        path = f"actions[{i}]"
        _check_labelled(c, action, path, ("start_s", "end_s"))
        if not isinstance(action, dict) or not all(k in action for k in ("start_s", "end_s")):
            previous_end = None
            continue
        start, end = action["start_s"], action["end_s"]
        c.number(start, f"{path}.start_s", minimum=0.0)
        c.number(end, f"{path}.end_s", minimum=0.0)
        if not (_is_number(start) and _is_number(end)):
            previous_end = None
            continue
        if end < start:
            c.fail(path, f"end_s {end} is before start_s {start}")
        if previous_end is not None and abs(start - previous_end) > TIME_TOLERANCE_S:
            c.fail(f"{path}.start_s", f"{start} does not follow the previous action's end {previous_end}")
        if _is_number(horizon_s) and end > horizon_s + TIME_TOLERANCE_S:
            c.fail(f"{path}.end_s", f"{end} is beyond the horizon {horizon_s}")
        previous_end = end


def _check_erank(c: _Checker, erank: Any) -> None:
    keys = ("convention", "before", "after", "fused", "mutual_gain", "status", "messages")
    if not c.object(erank, "erank", keys):
        return
    c.string(erank["convention"], "erank.convention", choices=ERANK_CONVENTIONS)
    c.number_map(erank["before"], "erank.before")
    c.number_map(erank["after"], "erank.after")
    c.number(erank["fused"], "erank.fused", minimum=0.0, nullable=True)
    c.number_map(erank["mutual_gain"], "erank.mutual_gain")
    c.string(erank["status"], "erank.status", choices=HEALTH_STATUSES)
    messages = erank["messages"]
    if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
        c.fail("erank.messages", "expected an array of strings")


TOP_LEVEL_KEYS = ("schema", "stamp", "frame_id", "window", "modalities", "current", "horizon_s",
                  "actions", "erank", "latency", "model")


def validate_anticipation(doc: Any) -> list[str]:
    """Problems that make ``doc`` (a decoded JSON value) an invalid v1 document; [] when valid.

    Unknown extra keys are allowed (later v1 producers may add fields; consumers ignore them).
    """
    c = _Checker()
    if not c.object(doc, "", ()):
        return c.problems
    for key in TOP_LEVEL_KEYS:
        if key not in doc:
            c.fail(key, "missing")
    if "schema" in doc and doc["schema"] != SCHEMA:
        c.fail("schema", f"expected {SCHEMA!r}, got {doc['schema']!r}")
    if "stamp" in doc and c.object(doc["stamp"], "stamp", ("sec", "nanosec")):
        c.integer(doc["stamp"]["sec"], "stamp.sec")
        c.integer(doc["stamp"]["nanosec"], "stamp.nanosec", minimum=0)
        if _is_int(doc["stamp"]["nanosec"]) and doc["stamp"]["nanosec"] >= 1_000_000_000:
            c.fail("stamp.nanosec", "must be < 1000000000")
    if "frame_id" in doc:
        c.string(doc["frame_id"], "frame_id")
    if "window" in doc and c.object(doc["window"], "window", ("frames", "span_s", "fps", "present")):
        window = doc["window"]
        c.integer(window["frames"], "window.frames", minimum=1)
        c.number(window["span_s"], "window.span_s", minimum=0.0)
        c.number(window["fps"], "window.fps", minimum=0.0, exclusive_minimum=True)
        if c.object(window["present"], "window.present", ()):
            for name, count in window["present"].items():
                c.integer(count, f"window.present.{name}", minimum=0)
                if _is_int(count) and _is_int(window["frames"]) and count > window["frames"]:
                    c.fail(f"window.present.{name}", f"{count} exceeds window.frames {window['frames']}")
    if "modalities" in doc and c.object(doc["modalities"], "modalities", ()):
        if not doc["modalities"]:
            c.fail("modalities", "must name at least one modality")
        for name, state in doc["modalities"].items():
            c.string(state, f"modalities.{name}", choices=MODALITY_STATES)
    if "current" in doc:
        _check_labelled(c, doc["current"], "current")
    if "horizon_s" in doc:
        c.number(doc["horizon_s"], "horizon_s", minimum=0.0, exclusive_minimum=True)
    if "actions" in doc:
        _check_actions(c, doc["actions"], doc.get("horizon_s"))
    if "erank" in doc:
        _check_erank(c, doc["erank"])
    if "latency" in doc and c.object(doc["latency"], "latency", ("inference_ms", "end_to_end_ms")):
        c.number(doc["latency"]["inference_ms"], "latency.inference_ms", minimum=0.0)
        c.number(doc["latency"]["end_to_end_ms"], "latency.end_to_end_ms", nullable=True)
    if "model" in doc and c.object(doc["model"], "model", ("name", "checkpoint_sha256")):
        c.string(doc["model"]["name"], "model.name")
        c.string(doc["model"]["checkpoint_sha256"], "model.checkpoint_sha256")
    return c.problems


def parse_anticipation(source: str | bytes | dict) -> AnticipationMessage:
    """Parse a document (JSON text, bytes, or an already decoded dict) into typed dataclasses.

    Raises AnticipationFormatError (a ValueError) listing every problem when it is invalid.
    """
    if isinstance(source, (str, bytes, bytearray)):
        try:
            doc = json.loads(source)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AnticipationFormatError([f"not JSON: {exc}"]) from None
    else:
        doc = source
    problems = validate_anticipation(doc)
    if problems:
        raise AnticipationFormatError(problems)
    erank = doc["erank"]
    return AnticipationMessage(
        schema=doc["schema"],
        stamp_sec=doc["stamp"]["sec"],
        stamp_nanosec=doc["stamp"]["nanosec"],
        frame_id=doc["frame_id"],
        window=Window(frames=doc["window"]["frames"], span_s=float(doc["window"]["span_s"]),
                      fps=float(doc["window"]["fps"]), present=dict(doc["window"]["present"])),
        modalities=dict(doc["modalities"]),
        current=CurrentAction(label=doc["current"]["label"], class_id=doc["current"]["class_id"],
                              confidence=float(doc["current"]["confidence"])),
        horizon_s=float(doc["horizon_s"]),
        actions=tuple(Action(label=a["label"], class_id=a["class_id"], confidence=float(a["confidence"]),
                             start_s=float(a["start_s"]), end_s=float(a["end_s"]))
                      for a in doc["actions"]),
        erank=EffectiveRanks(
            convention=erank["convention"],
            before={k: _optional_float(v) for k, v in erank["before"].items()},
            after={k: _optional_float(v) for k, v in erank["after"].items()},
            fused=_optional_float(erank["fused"]),
            mutual_gain={k: _optional_float(v) for k, v in erank["mutual_gain"].items()},
            status=erank["status"],
            messages=tuple(erank["messages"]),
        ),
        latency=Latency(inference_ms=float(doc["latency"]["inference_ms"]),
                        end_to_end_ms=_optional_float(doc["latency"]["end_to_end_ms"])),
        model=ModelInfo(name=doc["model"]["name"], checkpoint_sha256=doc["model"]["checkpoint_sha256"]),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
