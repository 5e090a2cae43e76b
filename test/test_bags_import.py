"""`retf data import bag`: recordings + labels -> clip store, through the node's conversions."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from old_bags import NS, body_joints, kinect_messages, label_messages, write_foxy_bag
from retf_ros.bags.bagio import BagWriter
from retf_ros.bags.distros import distro_typestore
from retf_ros.data.clipstore import ClipStore

START_NS = 1_600_000_000 * NS
FRAMES = 60
CLASSES = ("reach", "idle", "grasp")
LABELS = [0] * 20 + [2] * 25 + [1] * 15  # per 20 Hz frame, as a label topic publishes them


def _retf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "retf_ros", *args], capture_output=True, text=True, timeout=300)


def _tree_digest(root: Path) -> str:
    """Names and bytes of every file under ``root`` ("" when it does not exist)."""
    if not root.exists():
        return ""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """A Foxy recording as two bags side by side: Azure Kinect bodies (zstd) and Int64 labels."""
    root = tmp_path_factory.mktemp("recording")
    write_foxy_bag(root / "kinect", kinect_messages(FRAMES, START_NS))
    write_foxy_bag(root / "labels", label_messages(LABELS, START_NS), compress=False)
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in CLASSES))
    return root


def _import(recording: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return _retf("data", "import", "bag", str(recording / "kinect"), str(recording / "labels"), "--out", str(out),
                 "--skeleton-topic", "body_tracking_data", *extra)


def test_two_bags_of_one_recording_become_one_labelled_clip_of_the_nearest_body(recording, tmp_path):
    out = tmp_path / "store"
    result = _import(recording, out, "--label-topic", "label", "--classes", str(recording / "classes.txt"),
                     "--subject", "s1")
    assert result.returncode == 0, result.stderr
    assert f"imported 1 clip(s), {FRAMES} frames at 20 fps" in result.stdout
    store = ClipStore(out)
    assert store.classes == list(CLASSES) and store.fps == 20.0 and store.modalities == ["skeleton"]
    assert store.skeleton_layout == "azure_kinect_32"
    assert store.clip_ids(part="train") == ["s1-kinect-00"]
    clip = store.load("s1-kinect-00")
    np.testing.assert_array_equal(clip.labels, LABELS)
    np.testing.assert_allclose(clip.stamps, np.arange(FRAMES) / 20.0, atol=1e-9)
    for frame in (0, 33, FRAMES - 1):  # body 0 stands at 1.5 m, body 1 at 2.5 m: the nearest is body 0
        np.testing.assert_allclose(clip.skeleton[frame], body_joints(frame, 0), rtol=1e-6)
    assert store.meta["recordings"][0]["subject"] == "s1"


def test_csv_labels_per_body_make_one_clip_per_body_and_leave_out_unlabelled_frames(recording, tmp_path):
    csv = tmp_path / "labels.csv"
    # Seconds from the recording's start; body 1 is labelled only on its first second.
    csv.write_text("start_s,end_s,label,body\n0.0,1.0,reach,0\n1.0,3.0,grasp,0\n0.0,1.0,idle,1\n")
    out = tmp_path / "store"
    result = _retf("data", "import", "bag", str(recording / "kinect"), "--out", str(out), "--skeleton-topic",
                   "body_tracking_data", "--labels", str(csv), "--classes", str(recording / "classes.txt"),
                   "--per-body")
    assert result.returncode == 0, result.stderr
    store = ClipStore(out)
    assert store.clip_ids(part="train") == ["kinect-body0-00", "kinect-body1-00"]
    body0, body1 = store.load("kinect-body0-00"), store.load("kinect-body1-00")
    np.testing.assert_array_equal(body0.labels, [0] * 20 + [2] * 40)
    np.testing.assert_array_equal(body1.labels, [1] * 20)
    np.testing.assert_allclose(body1.skeleton[5], body_joints(5, 1), rtol=1e-6)
    assert "40 unlabelled frames left out" in result.stdout


def test_importing_again_appends_to_the_store_and_checks_the_classes(recording, tmp_path):
    out = tmp_path / "store"
    classes = str(recording / "classes.txt")
    assert _import(recording, out, "--label-topic", "label", "--classes", classes, "--subject", "s1").returncode == 0
    appended = _import(recording, out, "--label-topic", "label", "--classes", classes, "--subject", "s2",
                       "--split", "val")
    assert appended.returncode == 0, appended.stderr
    assert appended.stdout.startswith("appended 1 clip(s)")
    store = ClipStore(out)
    assert (store.clip_ids(part="train"), store.clip_ids(part="val")) == (["s1-kinect-00"], ["s2-kinect-00"])
    assert [r["subject"] for r in store.meta["recordings"]] == ["s1", "s2"]
    other = tmp_path / "other_classes.txt"
    other.write_text("reach\nidle\ngrasp\nplace\n")
    before = _tree_digest(out)
    refused = _import(recording, out, "--label-topic", "label", "--classes", str(other), "--subject", "s3")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"retf data: error: cannot append to {out}: this recording has classes reach, idle, grasp, place "
        "(store: reach, idle, grasp)"]
    assert _tree_digest(out) == before
    again = _import(recording, out, "--label-topic", "label", "--classes", classes, "--subject", "s1")
    assert again.returncode == 2 and "already holds clip(s) s1-kinect-00" in again.stderr
    assert _tree_digest(out) == before


def _float_label_bag(path: Path) -> Path:
    store = distro_typestore("kilted")
    with BagWriter(path) as writer:
        writer.write("label", store.types["std_msgs/msg/Float64"](data=1.0), START_NS)
    return path


@pytest.mark.parametrize("case,expected", [
    ("missing_topic", "have no topic depth_camera/image_raw; they have: body_tracking_data, label"),
    ("label_type", "label topic label has type std_msgs/msg/Float64; supported: std_msgs integer types"),
    ("csv_overlap", "labels.csv:3: segment 0.5-2.0 s overlaps the previous one"),
    ("csv_unsorted", "labels.csv:3: segments are not sorted (starts at 0.0 s, before the previous segment)"),
    ("distro", "unknown ROS 2 distro 'rolling'; known: foxy, galactic, humble, iron, jazzy, kilted"),
])
def test_bad_input_is_one_error_line_and_leaves_the_store_unchanged(recording, tmp_path, case, expected):
    out = tmp_path / "store"
    classes = str(recording / "classes.txt")
    assert _import(recording, out, "--label-topic", "label", "--classes", classes).returncode == 0
    before = _tree_digest(out)
    csv = tmp_path / "labels.csv"
    bags = [str(recording / "kinect"), str(recording / "labels")]
    labels = ["--label-topic", "label"]
    topics = ["--skeleton-topic", "body_tracking_data"]
    if case == "missing_topic":
        topics += ["--depth-topic", "depth_camera/image_raw"]
    elif case == "label_type":
        bags[1] = str(_float_label_bag(tmp_path / "float_labels"))
    elif case in ("csv_overlap", "csv_unsorted"):
        csv.write_text("start_s,end_s,label\n0.0,1.0,reach\n"
                       + ("0.5,2.0,grasp\n" if case == "csv_overlap" else "1.0,2.0,grasp\n0.0,0.5,idle\n"))
        labels = ["--labels", str(csv)]
    elif case == "distro":
        labels += ["--distro", "rolling"]
    if case == "csv_unsorted":
        expected = expected.replace("labels.csv:3", "labels.csv:4")
    result = _retf("data", "import", "bag", *bags, "--out", str(out), *topics, *labels, "--classes", classes,
                   "--subject", "bad")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("retf data: error: ") and expected in lines[0], lines
    assert _tree_digest(out) == before
    assert not list(tmp_path.glob(".store.*"))  # no staging directory left behind
