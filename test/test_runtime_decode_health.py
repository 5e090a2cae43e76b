"""Decoding query outputs into timed actions, effective-rank health, and the v1 document the
real predictor produces (validated and parsed back by the client)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from retf_ros.checkpoint import load_checkpoint
from retf_ros.client import parse_anticipation, validate_anticipation
from retf_ros.errors import RetfError
from retf_ros.fusion.model import decode_future
from retf_ros.runtime.anticipation import anticipation_document, decode_actions
from retf_ros.runtime.frames import FrameSet
from retf_ros.runtime.health import ErankThresholds, window_erank_report
from retf_ros.runtime.predictor import StreamingPredictor

torch.set_num_threads(1)
CLASSES = ["idle", "walk", "sit down", "wave"]


def test_decode_hand_computed_example_to_seconds():
    # 4 classes + NONE (index 4); queries: walk, wave, NONE, idle (cut at the NONE)
    action_logits = torch.full((1, 4, 5), -10.0)
    action_logits[0, 0, 1] = 2.0
    action_logits[0, 1, 3] = 2.0
    action_logits[0, 2, 4] = 2.0
    action_logits[0, 3, 0] = 2.0
    duration_logits = torch.log(torch.tensor([[1.0, 3.0, 5.0, 7.0]]))  # kept: 1 : 3 -> 0.25, 0.75
    decoded = decode_future(action_logits, duration_logits)[0]
    actions = decode_actions(decoded, CLASSES, horizon_s=4.0)
    assert [(a.label, a.class_id) for a in actions] == [("walk", 1), ("wave", 3)]
    assert [(a.start_s, a.end_s) for a in actions] == [pytest.approx((0.0, 1.0)), pytest.approx((1.0, 4.0))]
    confidence = math.exp(2.0) / (math.exp(2.0) + 4 * math.exp(-10.0))
    assert actions[0].confidence == pytest.approx(confidence, rel=1e-6)


def test_consecutive_queries_of_one_class_merge_into_one_action():
    actions = decode_actions([(1, 0.25, 0.8), (1, 0.5, 0.5), (2, 0.25, 0.9)], CLASSES, horizon_s=4.0)
    assert [(a.label, a.start_s, a.end_s) for a in actions] == [("walk", 0.0, 3.0), ("sit down", 3.0, 4.0)]
    assert actions[0].confidence == pytest.approx((1.0 * 0.8 + 2.0 * 0.5) / 3.0)


def test_decode_clamps_rounding_to_the_horizon_and_handles_no_action():
    actions = decode_actions([(0, 0.5, 0.9), (2, 0.5000001, 0.8)], CLASSES, horizon_s=2.0)
    assert actions[1].start_s == pytest.approx(1.0) and actions[1].end_s == 2.0
    assert decode_actions([], CLASSES, horizon_s=2.0) == []
    short = decode_actions([(0, 0.3, 0.9), (2, 0.6999998, 0.8)], CLASSES, horizon_s=4.0)
    assert short[-1].end_s == 4.0  # fractions summing to just under 1 still reach the horizon


def rows(t: int, c: int, directions: int) -> torch.Tensor:
    """(t, c) tokens cycling through ``directions`` unit vectors: exactly ``directions`` equal
    singular values, so the (uncentred) erank is ``directions``."""
    z = torch.zeros(t, c)
    for i in range(t):
        z[i, i % directions] = 1.0
    return z


def test_erank_report_values_gains_and_statuses():
    t, c = 12, 8
    everywhere = torch.ones(t, dtype=torch.bool)
    report = window_erank_report(
        tokens_before={"rgb": rows(t, c, 2), "depth": rows(t, c, 2), "skeleton": rows(t, c, 3)},
        tokens_after={"rgb": rows(t, c, 4), "depth": rows(t, c, 3), "skeleton": rows(t, c, 3)},
        fused=rows(t, c, 1),
        present={"rgb": everywhere, "depth": everywhere, "skeleton": everywhere},
        valid=everywhere,
        thresholds=ErankThresholds(fused_warn=2.5, fused_error=1.5, mutual_gain_warn=1.5, mutual_gain_error=None))
    assert report.convention == "uncentred"
    assert report.before == pytest.approx({"rgb": 2.0, "depth": 2.0, "skeleton": 3.0}, abs=1e-5)
    assert report.after == pytest.approx({"rgb": 4.0, "depth": 3.0, "skeleton": 3.0}, abs=1e-5)
    assert report.fused == pytest.approx(1.0, abs=1e-5)
    # gains: rgb 2, depth 1, skeleton 0 -> harmonic means 4/3, 0, 0
    assert report.mutual_gain == pytest.approx({"rgb+depth": 4 / 3, "rgb+skeleton": 0.0, "depth+skeleton": 0.0},
                                               abs=1e-5)
    assert report.status == "error"
    assert report.messages == [
        "feature collapse: fused erank 1.000 < error threshold 1.5",
        "modality collapse: rgb+depth mutual gain 1.333 < warn threshold 1.5",
        "modality collapse: rgb+skeleton mutual gain 0.000 < warn threshold 1.5",
        "modality collapse: depth+skeleton mutual gain 0.000 < warn threshold 1.5",
    ]


def test_erank_report_skips_modalities_with_too_few_present_frames():
    t, c = 12, 8
    present = {"rgb": torch.ones(t, dtype=torch.bool), "depth": torch.arange(t) < 3}
    report = window_erank_report(
        tokens_before={"rgb": rows(t, c, 2), "depth": rows(t, c, 2)},
        tokens_after={"rgb": rows(t, c, 3), "depth": rows(t, c, 3)},
        fused=rows(t, c, 4), present=present, valid=torch.ones(t, dtype=torch.bool),
        thresholds=ErankThresholds())
    assert report.before["depth"] is None and report.after["depth"] is None
    assert report.mutual_gain == {"rgb+depth": None}
    assert report.fused == pytest.approx(4.0, abs=1e-5)
    assert report.status == "ok" and report.messages == []


def test_erank_thresholds_are_checked():
    with pytest.raises(RetfError, match="fused_error=3.0 must not exceed fused_warn=2.0"):
        ErankThresholds(fused_warn=2.0, fused_error=3.0)
    with pytest.raises(RetfError, match="min_frames=1 must be >= 2"):
        ErankThresholds(min_frames=1)


def test_the_predictors_document_is_valid_and_round_trips_through_the_client(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint)
    predictor = StreamingPredictor(checkpoint, device="cpu")
    rng = np.random.default_rng(0)
    base_ns = 1_700_000_000_123_456_789
    anticipation = None
    for i in range(16):
        stamp_ns = base_ns + i * 66_666_667
        frame = FrameSet(stamp=stamp_ns / 1e9, stamp_ns=stamp_ns, frame_id="camera_optical",
                         rgb=rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
                         depth=None if i > 12 else (rng.random((24, 32)) * 3).astype(np.float32),
                         skeleton=rng.normal(0, 0.4, (25, 3)).astype(np.float32))
        anticipation = predictor.stream_inference(frame) or anticipation
    doc = anticipation_document(anticipation, model_name=checkpoint.name,
                                checkpoint_sha256=checkpoint.sha256, end_to_end_ms=12.5)
    assert validate_anticipation(doc) == []
    text = json.dumps(doc, allow_nan=False)
    msg = parse_anticipation(text)
    assert msg.stamp_ns == base_ns + 15 * 66_666_667          # the source stamp, exactly
    assert msg.frame_id == "camera_optical"
    assert msg.modalities == {"rgb": "ok", "depth": "missing", "skeleton": "ok"}
    assert msg.window.frames == 16 and msg.window.present == {"rgb": 16, "depth": 13, "skeleton": 16}
    assert msg.horizon_s == 4.0 and msg.window.fps == 15.0
    assert not msg.actions or msg.actions[-1].end_s == pytest.approx(4.0)
    assert [a.label for a in msg.actions] == [a.label for a in anticipation.actions]
    assert msg.current.label == anticipation.current_label
    assert msg.erank.convention == "uncentred" and msg.erank.status == anticipation.erank.status
    assert msg.erank.before["rgb"] == pytest.approx(anticipation.erank.before["rgb"])
    assert msg.latency.end_to_end_ms == 12.5 and msg.latency.inference_ms > 0
    assert msg.model.name == "tiny-random" and msg.model.checkpoint_sha256 == checkpoint.sha256
