"""Offline bag evaluation against the streaming evaluation of the same clips, and the report."""
from __future__ import annotations

import base64
import json
import math
from html import escape as html_escape

import pytest
import torch

from retf_ros.checkpoint import load_checkpoint
from retf_ros.data.clipstore import ClipStore
from retf_ros.bags.frames import ground_truth
from retf_ros.bags.bagio import BagReader
from retf_ros.replay.evaluate import summary_lines
from retf_ros.replay.offline import OfflineOptions, run_offline
from retf_ros.evaluation.bag_report import build_report, documented_comparison, write_report
from retf_ros.evaluation.bag_scoring import protocol_moc, score_documents, split_clips
from retf_ros.runtime.health import ErankThresholds
from retf_ros.evaluation.streaming import evaluate_streaming

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def offline_run(replay_bag, replay_checkpoint):
    return run_offline(replay_bag, replay_checkpoint, OfflineOptions(torch_threads=1), progress=False)


def _same(a, b, path="") -> None:
    """Recursive equality of score dicts where NaN equals NaN."""
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            _same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a} != {b}"


def test_offline_bag_eval_scores_what_the_streaming_evaluation_of_the_clips_scores(
        offline_run, replay_bag, replay_clip_store, replay_checkpoint):
    torch.set_num_threads(1)
    store = ClipStore(replay_clip_store)
    checkpoint = load_checkpoint(replay_checkpoint)
    expected = evaluate_streaming(checkpoint, store, store.all_clip_ids(), device="cpu", progress=False).to_dict()
    clips = split_clips(ground_truth(BagReader(replay_bag), "ground_truth/action"))
    got = score_documents(offline_run.documents, clips, checkpoint.classes, checkpoint.metadata["horizon_s"])
    for key in ("accuracy", "moc", "scored", "current", "per_class"):
        _same(got[key], expected[key], key)
    assert got["predictions_outside_ground_truth"] == 0
    frames = sum(store.load(c).num_frames for c in store.all_clip_ids())
    assert offline_run.counters["predictions"] == frames == len(offline_run.documents)
    assert offline_run.counters["restarts"] == 1  # the silence between the two clips
    # The comparison means something: the model anticipates, and gets some of it right.
    assert got["scored"]["1"] > 100 and 0 < got["accuracy"]["1"] < 100
    erank_bag, erank_clips = got["effective_rank"], expected["effective_rank"]
    assert erank_bag["status"] == erank_clips["status"]
    for modality, value in erank_clips["after"].items():
        assert erank_bag["after"][modality] == pytest.approx(value, rel=1e-4)
    assert erank_bag["fused"] == pytest.approx(erank_clips["fused"], rel=1e-4)


def test_protocol_moc_applies_to_an_exported_bag_of_a_stream_checkpoint(offline_run, replay_bag, replay_checkpoint):
    checkpoint = load_checkpoint(replay_checkpoint)
    clips = split_clips(ground_truth(BagReader(replay_bag), "ground_truth/action"))
    moc = protocol_moc(offline_run.documents, clips, checkpoint.classes, checkpoint.metadata)
    assert moc["applies"] is True and moc["clips"] == 2 and moc["clips_without_every_prediction"] == []
    assert set(moc["table"]) == {"0.2", "0.3"} and set(moc["table"]["0.2"]) == {"0.1", "0.2", "0.3", "0.5"}
    assert all(0.0 <= v <= 100.0 for row in moc["table"].values() for v in row.values())
    protocol = dict(checkpoint.metadata, task="protocol")
    assert protocol_moc(offline_run.documents, clips, checkpoint.classes, protocol)["applies"] is False
    thinned = protocol_moc(offline_run.documents[::2], clips, checkpoint.classes, checkpoint.metadata)
    assert thinned["applies"] is False and "stride > 1" in thinned["reason"]


def test_report_is_json_plus_a_self_contained_html_page_with_plots(offline_run, replay_bag, replay_checkpoint,
                                                                   tmp_path):
    checkpoint = load_checkpoint(replay_checkpoint)
    reader = BagReader(replay_bag)
    clips = split_clips(ground_truth(reader, "ground_truth/action"))
    documented = {"test": {"data": {"path": "synth", "part": "test", "clips": 9},
                           "streaming": {"accuracy": {"1": 50.0, "2": None, "4": 10.0}}}}
    metadata = dict(checkpoint.metadata, metrics=documented)
    built = build_report(reader.summary, str(checkpoint.path), checkpoint.sha256, metadata,
                         [offline_run], clips, ErankThresholds())
    paths = write_report(built, [offline_run], clips, tmp_path / "report")
    report = json.loads(paths["json"].read_text())
    report = json.loads(paths["json"].read_text())
    assert report["schema"] == "retf_ros/replay_report/v1"
    assert list(report["runs"]) == ["offline"] and "agreement" not in report
    offline = report["runs"]["offline"]
    assert offline["predictions"] == len(offline["series"]["stamp_ns"]) == offline["counters"]["predictions"]
    assert set(offline["accuracy"]["accuracy"]) == {"1", "2", "4"}
    assert report["headline"]["offline"]["accuracy_1"] == offline["accuracy"]["accuracy"]["1"]
    assert offline["latency_ms"]["inference"]["count"] == offline["predictions"]
    assert offline["latency_ms"]["end_to_end"] is None  # only measured live
    assert sum(offline["erank"]["status_counts"].values()) == offline["predictions"]
    assert report["erank_thresholds"]["fused_warn"] == 2.5
    assert report["bag"]["ground_truth_clips"] == 2 and report["bag"]["topics"]["skeleton"]["count"] > 0
    page = paths["html"].read_text()
    assert page.count('src="data:image/png;base64,') == 3 and "http" not in page.replace("http-equiv", "")
    for name in ("timeline", "erank", "latency"):
        data = paths[name].read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert base64.b64encode(data).decode() in page
    comparison = documented_comparison(report)
    one_second = report["headline"]["offline"]["accuracy_1"]
    assert comparison[0] == "checkpoint's documented streaming accuracy (9 test clips of synth) vs this replay:"
    assert comparison[1] == f"  1 s ahead: documented 50.0%; offline {one_second:.1f}% ({one_second - 50:+.1f})"
    assert len(comparison) == 3 and comparison[2].startswith("  4 s ahead: documented 10.0%")
    assert html_escape(comparison[1]) in page
    line = summary_lines(report)[0]
    assert line.startswith("offline: accuracy now") and "protocol MoC" in line


def test_offline_bag_eval_gives_the_numbers_of_retf_eval_on_the_same_clips(offline_run, replay_bag, replay_clip_store,
                                                                          replay_checkpoint, tmp_path):
    """`retf eval` (the command users run on a clip store): its MoC table and its streaming
    accuracies equal the bag's protocol MoC and lead accuracies."""
    import subprocess
    import sys

    out = tmp_path / "eval.json"
    result = subprocess.run([sys.executable, "-m", "retf_ros", "eval", "--checkpoint", str(replay_checkpoint),
                             "--data", str(replay_clip_store), "--part", "train", "--json", str(out),
                             "--threads", "1", "--device", "cpu", "--cache-dir", str(tmp_path / "prepared")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = json.loads(out.read_text())
    assert expected["data"]["clips"] == 2
    checkpoint = load_checkpoint(replay_checkpoint)
    clips = split_clips(ground_truth(BagReader(replay_bag), "ground_truth/action"))
    moc = protocol_moc(offline_run.documents, clips, checkpoint.classes, checkpoint.metadata)
    for alpha, row in expected["moc"].items():
        assert moc["table"][alpha] == pytest.approx(row, abs=1e-9), alpha
    got = score_documents(offline_run.documents, clips, checkpoint.classes, checkpoint.metadata["horizon_s"])
    assert got["accuracy"] == pytest.approx(expected["streaming"]["accuracy"], abs=1e-9)
    assert got["current"]["accuracy"] == pytest.approx(expected["streaming"]["current"]["accuracy"], abs=1e-9)
