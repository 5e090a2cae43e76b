"""docs/your-data.md, command by command: record (bags the test writes, as a Foxy robot would)
-> label (a label topic and a CSV) -> import -> fine-tune -> `retf bag eval` -> deploy to the node."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_tiny_checkpoint
from old_bags import NS, kinect_messages, label_messages, write_foxy_bag
from retf_ros.data.clipstore import ClipStore

START_NS = 1_700_000_000 * NS
FPS = 20.0
SECONDS = 8
CLASSES = ("reach", "grasp", "place")
# Tiny on purpose (the walkthrough, not the model, is under test): 1 epoch at 5 fps.
TRAIN_CONFIG = "fps: 5.0\nwindow: 8\nhorizon_s: 2.0\nepochs: 1\nsamples_per_clip: 4\nbatch_size: 8\nthreads: 1\n"


def _retf(*args, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "retf_ros", *map(str, args)], capture_output=True, text=True,
                            timeout=300, cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, f"retf {' '.join(map(str, args))}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def cell(tmp_path_factory) -> Path:
    """Steps 1-4: two recorded sessions, their labels, the import and the fine-tuning run."""
    root = tmp_path_factory.mktemp("cell")
    frames = int(SECONDS * FPS)
    # 1. record: session1 (+ a live label topic in its own bag), session2 (labelled afterwards)
    write_foxy_bag(root / "session1", kinect_messages(frames, START_NS, fps=FPS))
    labels = [(i // 20) % len(CLASSES) for i in range(frames)]  # a new activity every second
    write_foxy_bag(root / "session1_labels", label_messages(labels, START_NS, fps=FPS), compress=False)
    write_foxy_bag(root / "session2", kinect_messages(frames, START_NS + 60 * NS, fps=FPS))
    # 2. label
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in CLASSES))
    (root / "session2.csv").write_text("start_s,end_s,label\n" + "".join(
        f"{s:.1f},{s + 1:.1f},{CLASSES[s % 3]}\n" for s in range(SECONDS)))
    # 3. import
    _retf("data", "import", "bag", "session1", "session1_labels", "--out", "data/cell", "--skeleton-topic",
          "body_tracking_data", "--label-topic", "label", "--classes", "classes.txt", "--subject", "alice",
          "--split", "train", cwd=root)
    _retf("data", "import", "bag", "session2", "--out", "data/cell", "--skeleton-topic", "body_tracking_data",
          "--labels", "session2.csv", "--classes", "classes.txt", "--subject", "bob", "--split", "test", cwd=root)
    # 4. fine-tune a trained (here: tiny random) skeleton checkpoint
    base = write_tiny_checkpoint(root / "base" / "skeleton", modalities=("skeleton",), window=16)
    (root / "train.yaml").write_text(TRAIN_CONFIG)
    trained = _retf("train", "--data", "data/cell", "--out", "runs/cell", "--config", "train.yaml", "--init", base,
                    "--device", "cpu", "--cache-dir", "cache", cwd=root)
    assert "rebuilt: class_head, segmentation_head" in trained.stderr
    return root


def test_import_and_fine_tuning_produce_a_checkpoint_of_the_cell_classes(cell):
    store = ClipStore(cell / "data/cell")
    assert store.classes == list(CLASSES) and store.skeleton_layout == "azure_kinect_32"
    assert store.clip_ids(part="train") == ["alice-session1-00"]
    assert store.clip_ids(part="test") == ["bob-session2-00"]
    metadata = json.loads((cell / "runs/cell/best.json").read_text())
    assert metadata["classes"] == list(CLASSES) and metadata["modalities"] == ["skeleton"]


def test_bag_eval_scores_the_held_out_recording(cell):
    # 5. evaluate: export the test recording with its ground truth, replay it through the runtime
    _retf("bag", "export", "data/cell", "--part", "test", "--out", "session2_eval", cwd=cell)
    result = _retf("bag", "eval", "session2_eval", "--checkpoint", "runs/cell", "--report", "reports/cell", cwd=cell)
    assert "offline: accuracy now" in result.stdout
    report = json.loads((cell / "reports/cell/report.json").read_text())
    assert report["headline"]["offline"]["accuracy_now"] is not None


def test_deployed_checkpoint_anticipates_on_the_replayed_foxy_recording(cell, ros_env, tmp_path):
    # 6. deploy: the node with the run's checkpoint, the raw recording replayed (converted) to it
    from retf_ros.harness.processes import node_argv, start, start_probe, wait_for

    namespace = "/cell"
    node = start("node", node_argv(overrides={"checkpoint": str(cell / "runs/cell"), "skeleton.type": "marker_array",
                                              "sync.reference": "skeleton", "torch_threads": 1},
                                   remaps={"skeleton": "body_tracking_data"}) + ["-r", f"__ns:={namespace}"],
                 ros_env, tmp_path)
    probe = start_probe(ros_env, tmp_path, node_name=f"{namespace}/anticipation_node")
    try:
        player = subprocess.run([sys.executable, "-m", "retf_ros", "bag", "play", str(cell / "session1"),
                                 "--wait-for-subscribers", "120", "--ros-args", "-r", f"__ns:={namespace}"],
                                env=ros_env, capture_output=True, text=True, timeout=240)
        assert player.returncode == 0, player.stderr
        documents = wait_for(lambda: probe.events("anticipation"), 30, "an anticipation from the deployed node")
        assert documents[0]["doc"]["model"]["name"] == "cell"
    finally:
        probe.stop()
        node.stop()
