"""retf_ros.client: parsing and hand-written validation of the retf_ros/anticipation/v1 document."""
from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from retf_ros.client import (AnticipationFormatError, SCHEMA, parse_anticipation,
                             validate_anticipation)
from retf_ros.errors import RetfError


def valid_document() -> dict:
    return {
        "schema": SCHEMA,
        "stamp": {"sec": 1700000000, "nanosec": 123456789},
        "frame_id": "camera_color_optical_frame",
        "window": {"frames": 32, "span_s": 2.0667, "fps": 15.0,
                   "present": {"rgb": 32, "depth": 20, "skeleton": 32}},
        "modalities": {"rgb": "ok", "depth": "missing", "skeleton": "ok"},
        "current": {"label": "walk", "class_id": 1, "confidence": 0.8},
        "horizon_s": 4.0,
        "actions": [
            {"label": "walk", "class_id": 1, "confidence": 0.7, "start_s": 0.0, "end_s": 1.5},
            {"label": "sit down", "class_id": 3, "confidence": 0.55, "start_s": 1.5, "end_s": 4.0},
        ],
        "erank": {"convention": "uncentred", "before": {"rgb": 5.2, "depth": None, "skeleton": 4.1},
                  "after": {"rgb": 5.9, "depth": None, "skeleton": 4.4}, "fused": 6.3,
                  "mutual_gain": {"rgb+depth": None, "rgb+skeleton": 0.42, "depth+skeleton": None},
                  "status": "ok", "messages": []},
        "latency": {"inference_ms": 12.5, "end_to_end_ms": 30.25},
        "model": {"name": "demo", "checkpoint_sha256": "ab" * 32},
    }


def test_valid_document_has_no_problems_and_parses_to_typed_fields():
    doc = valid_document()
    assert validate_anticipation(doc) == []
    msg = parse_anticipation(json.dumps(doc))
    assert msg.stamp_ns == 1700000000_123456789
    assert msg.stamp == pytest.approx(1700000000.123456789)
    assert msg.window.frames == 32 and msg.window.present == {"rgb": 32, "depth": 20, "skeleton": 32}
    assert msg.current.label == "walk"
    assert [a.label for a in msg.actions] == ["walk", "sit down"]
    assert msg.actions[1].duration_s == pytest.approx(2.5)
    assert msg.erank.before["depth"] is None and msg.erank.mutual_gain["rgb+skeleton"] == pytest.approx(0.42)
    assert msg.latency.end_to_end_ms == pytest.approx(30.25)
    assert msg.model.checkpoint_sha256 == "ab" * 32


def test_planner_helpers_answer_what_happens_when():
    msg = parse_anticipation(valid_document())
    assert msg.action_at(0.0).label == "walk"
    assert msg.action_at(1.5).label == "sit down"
    assert msg.action_at(3.99).label == "sit down"
    assert msg.action_at(4.0).label == "sit down"     # the horizon itself belongs to the last action
    assert msg.action_at(4.01) is None
    assert msg.next_action().label == "sit down"
    assert msg.degraded is True


def test_bytes_and_dict_inputs_parse_the_same():
    doc = valid_document()
    assert parse_anticipation(json.dumps(doc).encode()) == parse_anticipation(doc)


def _problems_after(edit) -> list[str]:
    doc = copy.deepcopy(valid_document())
    edit(doc)
    return validate_anticipation(doc)


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d.pop("erank"), ["erank: missing"]),
    (lambda d: d["stamp"].update(sec="1700000000"), ["stamp.sec: expected an integer, got str"]),
    (lambda d: d["stamp"].update(nanosec=1_000_000_000), ["stamp.nanosec: must be < 1000000000"]),
    (lambda d: d.update(schema="retf_ros/anticipation/v0"),
     ["schema: expected 'retf_ros/anticipation/v1', got 'retf_ros/anticipation/v0'"]),
    (lambda d: d["current"].update(confidence=1.5), ["current.confidence: 1.5 must be <= 1.0"]),
    (lambda d: d["current"].update(class_id=True), ["current.class_id: expected an integer, got bool"]),
    (lambda d: d["actions"][0].pop("label"), ["actions[0].label: missing"]),
    (lambda d: d["actions"][1].update(start_s=1.0),
     ["actions[1].start_s: 1.0 does not follow the previous action's end 1.5"]),
    (lambda d: d["actions"][1].update(end_s=4.5), ["actions[1].end_s: 4.5 is beyond the horizon 4.0"]),
    (lambda d: d["actions"][0].update(end_s=float("nan")),
     ["actions[0].end_s: expected a finite number, got nan"]),
    (lambda d: d.update(actions={}), ["actions: expected an array, got dict"]),
    (lambda d: d["modalities"].update(depth="gone"),
     ["modalities.depth: 'gone' is not one of ok, stale, missing"]),
    (lambda d: d["window"].update(fps=0), ["window.fps: 0 must be > 0.0"]),
    (lambda d: d["window"]["present"].update(rgb=40), ["window.present.rgb: 40 exceeds window.frames 32"]),
    (lambda d: d["erank"].update(status="bad"), ["erank.status: 'bad' is not one of ok, warn, error"]),
    (lambda d: d["erank"]["before"].update(rgb="5"),
     ["erank.before.rgb: expected a finite number or null, got str"]),
    (lambda d: d["latency"].update(end_to_end_ms=None), []),
    (lambda d: d["latency"].update(inference_ms=None),
     ["latency.inference_ms: expected a finite number, got null"]),
    (lambda d: d.update(extra_field={"added": "later"}), []),
])
def test_validation_names_each_problem_by_path(edit, expected):
    assert _problems_after(edit) == expected


def test_validation_reports_every_problem_at_once():
    doc = valid_document()
    del doc["model"]
    doc["horizon_s"] = "4"
    doc["frame_id"] = 7
    assert validate_anticipation(doc) == [
        "model: missing",
        "frame_id: expected a string, got int",
        "horizon_s: expected a finite number, got str",
    ]


def test_non_object_documents_are_refused():
    assert validate_anticipation([1, 2]) == [": expected an object, got list"]


def test_parse_raises_a_retf_error_listing_the_problems():
    doc = valid_document()
    doc["actions"][0]["confidence"] = -0.1
    with pytest.raises(AnticipationFormatError) as info:
        parse_anticipation(doc)
    assert info.value.problems == ["actions[0].confidence: -0.1 must be >= 0.0"]
    assert isinstance(info.value, RetfError) and isinstance(info.value, ValueError)
    with pytest.raises(AnticipationFormatError, match="not JSON"):
        parse_anticipation("{not json")


def test_the_client_needs_neither_torch_nor_numpy():
    code = ("import sys, retf_ros.client; "
            "print(sorted(m for m in ('torch', 'numpy', 'rclpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
