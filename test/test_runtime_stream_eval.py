"""Streaming evaluation over a hand-built two-clip store, with a model rigged to a constant
answer ("idle" now, "walk" ahead) so every score can be counted by hand."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conftest import TINY_CLASSES
from retf_ros.checkpoint import load_checkpoint
from retf_ros.client import parse_anticipation
from retf_ros.data.clipstore import Clip, ClipStoreWriter
from retf_ros.errors import RetfError
from retf_ros.runtime.anticipation import anticipation_document
from retf_ros.runtime.frames import FrameSet
from retf_ros.runtime.predictor import StreamingPredictor
from retf_ros.evaluation.streaming import StreamScorer, evaluate_streaming

torch.set_num_threads(1)
IDLE, WALK, SIT = 0, 1, 2


def make_clip(clip_id: str, fps: float, labels: list[int], seed: int) -> Clip:
    rng = np.random.default_rng(seed)
    t = len(labels)
    return Clip(clip_id=clip_id, stamps=np.arange(t) / fps, labels=np.asarray(labels, np.int64),
                rgb=rng.integers(0, 256, (t, 24, 32, 3), dtype=np.uint8),
                depth=rng.integers(500, 4000, (t, 24, 32)).astype(np.uint16),
                skeleton=rng.normal(0, 0.4, (t, 25, 3)).astype(np.float32))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    writer = ClipStoreWriter(tmp_path_factory.mktemp("store"), classes=list(TINY_CLASSES),
                             meta={"fps": 15.0, "modalities": ["rgb", "depth", "skeleton"],
                                   "skeleton_layout": "kinect_v2_25", "source": "test"}, compress=False)
    writer.add(make_clip("a", 15.0, [IDLE] * 30 + [WALK] * 30, seed=1))   # 4 s at 15 Hz
    writer.add(make_clip("b", 30.0, [SIT] * 60, seed=2))                  # 2 s at 30 Hz
    writer.write_split("default", {"test": ["a", "b"]})
    return writer.finish()


def rigged(checkpoint):
    """Always "idle" now and "walk" over the whole horizon, whatever the input."""
    model = checkpoint.model
    with torch.no_grad():
        model.class_head.weight.zero_()
        model.class_head.bias.copy_(torch.tensor([-5.0, 5.0, -5.0, -5.0, -5.0]))
        model.segmentation_head.weight.zero_()
        model.segmentation_head.bias.copy_(torch.tensor([5.0, -5.0, -5.0, -5.0]))
    return checkpoint


def test_scores_match_the_hand_count(tiny_checkpoint, store):
    result = evaluate_streaming(rigged(load_checkpoint(tiny_checkpoint)), store, ["a", "b"],
                                device="cpu", progress=False)
    out = result.to_dict()
    # clip a: 60 predictions at i/15 s; clip b (30 Hz -> 15 fps): 30 predictions at j*2/30 s.
    assert out["predictions"] == 90 and out["frames"] == 120 and out["clips"] == 2
    # 1 s ahead: a scores i < 45 (truth walk for i >= 15: 30 right, 15 wrong), b scores j < 15 (all wrong)
    assert out["scored"] == {"1": 60, "2": 30, "4": 0}
    assert out["accuracy"]["1"] == pytest.approx(50.0)
    assert out["per_class"]["1"]["idle"] == 0.0 and out["per_class"]["1"]["walk"] == 100.0
    assert out["per_class"]["1"]["sit down"] == 0.0 and math.isnan(out["per_class"]["1"]["wave"])
    assert out["moc"]["1"] == pytest.approx(100.0 / 3)
    # 2 s ahead: only a, i < 30, truth always walk
    assert out["accuracy"]["2"] == pytest.approx(100.0) and out["moc"]["2"] == pytest.approx(100.0)
    assert math.isnan(out["accuracy"]["4"])                       # nothing 4 s ahead inside a clip
    # now: 90 scored; idle right 30 times (a, i < 30), walk and sit down always wrong
    assert out["current"] == {"accuracy": pytest.approx(100.0 / 3), "moc": pytest.approx(100.0 / 3), "scored": 90}
    assert out["window"] == 16 and out["fps"] == 15.0 and out["horizon_s"] == 4.0 and out["device"] == "cpu"
    erank = out["effective_rank"]
    assert erank["convention"] == "uncentred" and sum(erank["status"].values()) == 90
    assert set(erank["before"]) == {"rgb", "depth", "skeleton"} and erank["fused"] >= 1.0
    assert set(erank["mutual_gain"]) == {"rgb+depth", "rgb+skeleton", "depth+skeleton"}
    assert out["latency"]["inference_ms"]["p50"] > 0
    table = result.format_table()
    assert "     1 s   50.00   33.33      60" in table
    assert "     now   33.33   33.33      90" in table


def test_stride_and_leads_beyond_the_horizon(tiny_checkpoint, store):
    result = evaluate_streaming(rigged(load_checkpoint(tiny_checkpoint)), store, ["a"], ahead_s=(1.0, 6.0),
                                stride=4, device="cpu", progress=False)
    out = result.to_dict()
    assert out["predictions"] == 15                               # 60 frames, every 4th
    assert out["not_scored_beyond_horizon"] == [6.0] and out["scored"]["6"] == 0
    # predictions at i = 3, 7, ..., 59; 1 s ahead scored for i < 45 (11 of them), walk truth for i >= 15 (8)
    assert out["scored"]["1"] == 11 and out["accuracy"]["1"] == pytest.approx(100.0 * 8 / 11)


def test_classes_must_match_the_checkpoint(tmp_path, tiny_checkpoint):
    writer = ClipStoreWriter(tmp_path / "other", classes=["x", "y"], meta={"fps": 15.0, "modalities": ["skeleton"]})
    writer.write_split("default", {"test": []})
    other = writer.finish()
    with pytest.raises(RetfError, match="differ from the checkpoint's"):
        evaluate_streaming(load_checkpoint(tiny_checkpoint), other, [], device="cpu", progress=False)


def test_scoring_published_documents_equals_scoring_the_runtime_objects(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint)
    predictor = StreamingPredictor(checkpoint, device="cpu", stride=2)
    clip = make_clip("c", 15.0, [IDLE, WALK, SIT, 3] * 15, seed=3)
    direct, via_json = (StreamScorer(checkpoint.classes, horizon_s=4.0) for _ in range(2))
    for scorer in (direct, via_json):
        scorer.set_ground_truth(clip.stamps, clip.labels)
    for t in range(clip.num_frames):
        frame = FrameSet(stamp=float(clip.stamps[t]), rgb=clip.rgb[t], depth=clip.depth[t], skeleton=clip.skeleton[t])
        anticipation = predictor.stream_inference(frame)
        if anticipation is None:
            continue
        direct.add_anticipation(anticipation)
        doc = anticipation_document(anticipation, model_name="tiny", checkpoint_sha256=checkpoint.sha256,
                                    end_to_end_ms=None)
        via_json.add_message(parse_anticipation(json.dumps(doc)))
    a, b = direct.result().to_dict(), via_json.result().to_dict()
    assert a["predictions"] == b["predictions"] == 30
    for key in ("accuracy", "scored", "current"):
        assert json.dumps(a[key]) == json.dumps(b[key])
    assert a["effective_rank"]["fused"] == pytest.approx(b["effective_rank"]["fused"], rel=1e-6)


def test_ground_truth_is_checked():
    scorer = StreamScorer(list(TINY_CLASSES))
    with pytest.raises(RetfError, match="set_ground_truth must be called"):
        scorer.add(0.0, "idle", lambda s: "idle")
    with pytest.raises(RetfError, match="label 7 outside the 4 classes"):
        scorer.set_ground_truth(np.arange(3.0), np.array([0, 1, 7]))
    with pytest.raises(RetfError, match="stamps must not decrease"):
        scorer.set_ground_truth(np.array([0.0, 2.0, 1.0]), np.array([0, 1, 2]))
    scorer.set_ground_truth(np.array([0.0, 1.0, 2.0]), np.array([0, -1, 2]))   # -1 = IGNORE
    scorer.add(0.0, "idle", lambda s: "walk")        # now: idle right; 1 s ahead: IGNORE; 2 s: sit down, wrong
    out = scorer.result().to_dict()
    assert out["current"]["scored"] == 1 and out["current"]["accuracy"] == 100.0
    assert out["scored"] == {"1": 0, "2": 1, "4": 0} and out["accuracy"]["2"] == 0.0
