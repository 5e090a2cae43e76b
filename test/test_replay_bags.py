"""Bag export and reading without DDS: the documented layout, standard MCAP, exact stamps and
payloads, and what damaged or incomplete bags do (clear errors or documented degradation)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from retf_ros.data.clipstore import ClipStore
from retf_ros.errors import DataFormatError, RetfError
from retf_ros.bags import messages as bag_messages
from retf_ros.bags.frames import ground_truth
from retf_ros.bags.bagio import BagReader, BagWriter
from retf_ros.bags.conventions import (DEFAULT_CLIP_GAP_S, DEFAULT_FRAME_ID, DEFAULT_START_EPOCH_S,
                                       GROUND_TRUTH_TOPIC, META_CLASSES, RGB_COMPRESSED_TOPIC)
from retf_ros.bags.export import ExportOptions, export_clip_store
from retf_ros.replay.offline import OfflineOptions, run_offline
from retf_ros.runtime import messages as conversions

NS = 1_000_000_000


@pytest.fixture
def exported_bag(replay_bag) -> Path:
    return replay_bag


def _retf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "retf_ros", *args], capture_output=True, text=True, timeout=120)


def _by_topic(reader: BagReader) -> dict[str, list]:
    out: dict[str, list] = {}
    for message in reader.messages():
        out.setdefault(message.topic, []).append(message)
    return out


def test_export_writes_the_documented_topics_as_standard_mcap(exported_bag, replay_clip_store):
    store = ClipStore(replay_clip_store)
    frames = sum(store.load(c).num_frames for c in store.all_clip_ids())
    info = yaml.safe_load((exported_bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == "mcap" and info["version"] == 9
    topics = {t["topic_metadata"]["name"]: (t["topic_metadata"]["type"], t["message_count"])
              for t in info["topics_with_message_count"]}
    assert topics == {"rgb/image_raw": ("sensor_msgs/msg/Image", frames),
                      "depth/image_raw": ("sensor_msgs/msg/Image", frames),
                      "skeleton": ("geometry_msgs/msg/PoseArray", frames),
                      GROUND_TRUTH_TOPIC: ("std_msgs/msg/String", frames)}
    assert json.loads(info["custom_data"][META_CLASSES]) == store.classes
    # What Foxglove / ros2 bag need: ros2msg schemas with full definitions and cdr messages.
    from mcap.reader import make_reader

    with open(exported_bag / "sample.mcap", "rb") as stream:
        mcap_reader = make_reader(stream)
        assert mcap_reader.get_header().profile == "ros2"
        summary = mcap_reader.get_summary()
    assert {s.name: s.encoding for s in summary.schemas.values()} == {
        "sensor_msgs/msg/Image": "ros2msg", "geometry_msgs/msg/PoseArray": "ros2msg", "std_msgs/msg/String": "ros2msg"}
    assert all("Header header" in s.data.decode() for s in summary.schemas.values() if s.name != "std_msgs/msg/String")
    assert {c.message_encoding for c in summary.channels.values()} == {"cdr"}
    assert summary.statistics.message_count == 4 * frames


def test_exported_stamps_and_payloads_are_the_clips_exactly(exported_bag, replay_clip_store):
    store = ClipStore(replay_clip_store)
    reader = BagReader(exported_bag)
    topics = _by_topic(reader)
    row = 0
    start_ns = DEFAULT_START_EPOCH_S * NS
    for clip_id in store.all_clip_ids():
        clip = store.load(clip_id)
        expected_ns = start_ns + np.round((clip.stamps - clip.stamps[0]) * NS).astype(np.int64)
        for t in range(clip.num_frames):
            rgb, depth, skeleton, truth = (reader.deserialize(topics[name][row]) for name in
                                           ("rgb/image_raw", "depth/image_raw", "skeleton", GROUND_TRUTH_TOPIC))
            for msg in (rgb, depth, skeleton):
                assert conversions.stamp_nanoseconds(msg) == expected_ns[t]
                assert msg.header.frame_id == DEFAULT_FRAME_ID
            assert topics["rgb/image_raw"][row].log_ns == expected_ns[t]
            assert rgb.encoding == "rgb8" and depth.encoding == "16UC1"
            np.testing.assert_array_equal(conversions.image_to_array(rgb), clip.rgb[t])
            metres = conversions.image_to_array(depth)
            valid = clip.depth[t] > 0
            np.testing.assert_array_equal(metres[valid], clip.depth[t][valid].astype(np.float32) / 1000.0)
            assert np.isnan(metres[~valid]).all()
            joints = conversions.pose_array_to_skeleton(skeleton, store.skeleton_layout)
            np.testing.assert_array_equal(joints, clip.skeleton[t])  # NaN joints stay NaN
            doc = json.loads(truth.data)
            assert doc == {"stamp": expected_ns[t] / NS, "stamp_ns": int(expected_ns[t]),
                           "label": store.classes[clip.labels[t]], "class_id": int(clip.labels[t]),
                           "clip": clip_id, "frame": t, "clip_stamp": float(clip.stamps[t])}
            row += 1
        # The next clip starts one silence (plus one frame) after this one ends.
        start_ns = int(expected_ns[-1]) + round((DEFAULT_CLIP_GAP_S + 1 / store.fps) * NS)
    assert np.isnan(ClipStore(replay_clip_store).load(store.all_clip_ids()[0]).skeleton).any(), \
        "the sample must contain missing joints for the NaN check to mean something"


def test_compressed_export_png_is_lossless_and_jpeg_is_close(replay_clip_store, tmp_path):
    store = ClipStore(replay_clip_store)
    clip_id = store.all_clip_ids()[0]
    clip = store.load(clip_id)
    for fmt, tolerance in (("png", 0), ("jpeg", 12.0)):
        bag = tmp_path / fmt
        export_clip_store(store.root, bag, ExportOptions(clip_ids=(clip_id,), compressed=fmt), progress=False)
        reader = BagReader(bag)
        assert "rgb/image_raw" not in reader.summary.topics
        first = next(reader.messages([RGB_COMPRESSED_TOPIC]))
        msg = reader.deserialize(first)
        assert msg.format == f"rgb8; {fmt} compressed bgr8"
        error = np.abs(conversions.compressed_image_to_array(msg).astype(float) - clip.rgb[0]).mean()
        assert error <= tolerance


def test_export_refuses_an_existing_bag_and_an_empty_split_part(exported_bag, replay_clip_store, tmp_path):
    before = sorted(p.name for p in exported_bag.iterdir())
    with pytest.raises(RetfError, match=f"^{exported_bag} exists already; remove it or choose another --out$"):
        export_clip_store(replay_clip_store, exported_bag, ExportOptions(), progress=False)
    assert sorted(p.name for p in exported_bag.iterdir()) == before
    with pytest.raises(DataFormatError, match="split 'default' part 'test' lists no clips to export"):
        export_clip_store(replay_clip_store, tmp_path / "b", ExportOptions(part="test"), progress=False)


def test_truncated_bag_yields_its_complete_messages_with_a_warning(exported_bag, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(exported_bag, damaged)
    mcap = damaged / "sample.mcap"
    size = mcap.stat().st_size
    with open(mcap, "r+b") as fh:
        fh.truncate(int(size * 0.6))
    original = list(BagReader(exported_bag).messages())
    reader = BagReader(damaged)
    recovered = list(reader.messages())
    assert any("truncated" in w and "recovered" in w for w in reader.warnings)
    assert 0 < len(recovered) < len(original)
    # What was recovered is exactly the start of the recording.
    assert [(m.topic, m.log_ns, m.raw) for m in recovered] == [(m.topic, m.log_ns, m.raw) for m in original[:len(recovered)]]
    assert reader.summary.message_count == len(recovered)
    result = _retf("bag", "info", str(damaged))
    assert result.returncode == 0 and "warning:" in result.stdout and "truncated" in result.stdout


def test_bag_directory_without_metadata_reads_its_mcap_file(exported_bag, tmp_path):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(exported_bag, unfinished)
    (unfinished / "metadata.yaml").unlink()
    reader = BagReader(unfinished)
    assert any("no metadata.yaml" in w for w in reader.warnings)
    assert reader.summary.message_count == BagReader(exported_bag).summary.message_count


def test_things_that_are_not_bags_give_one_clear_line(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    empty = tmp_path / "empty"
    empty.mkdir()
    zero = tmp_path / "zero.mcap"
    zero.write_bytes(b"")
    for path, expected in ((tmp_path / "absent", "does not exist"), (text, "is not a bag"),
                           (empty, "is not a bag"), (zero, "unreadable")):
        with pytest.raises(DataFormatError, match=expected):
            BagReader(path)
        result = _retf("bag", "info", str(path))
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
        assert str(path) in result.stderr


def _copy_bag(source: Path, target: Path, keep, seconds: float | None = None) -> None:
    """Copy the messages of the topics ``keep`` accepts (the first ``seconds`` only, if given)."""
    reader = BagReader(source)
    end = None if seconds is None else reader.summary.start_ns + round(seconds * NS)
    with BagWriter(target) as writer:
        for message in reader.messages():
            if keep(message.topic) and (end is None or message.log_ns < end):
                writer.write_raw(message.topic, message.msgtype, message.log_ns, message.raw)


def test_missing_modality_topic_runs_with_that_modality_masked(exported_bag, replay_checkpoint, tmp_path):
    no_depth = tmp_path / "no_depth"
    _copy_bag(exported_bag, no_depth, lambda topic: topic != "depth/image_raw", seconds=3.0)
    run = run_offline(no_depth, replay_checkpoint, OfflineOptions(), progress=False)
    assert any("depth/image_raw" in note and "missing" in note for note in run.notes)
    assert run.documents and all(d["modalities"]["depth"] == "missing" for d in run.documents)
    assert all(d["modalities"]["rgb"] == "ok" and d["modalities"]["skeleton"] == "ok" for d in run.documents)
    assert run.counters["frame_sets"] == BagReader(no_depth).summary.topics["rgb/image_raw"].count

    truth_only = tmp_path / "truth_only"
    _copy_bag(exported_bag, truth_only, lambda topic: topic == GROUND_TRUTH_TOPIC, seconds=3.0)
    with pytest.raises(RetfError, match="none of the model's input topics"):
        run_offline(truth_only, replay_checkpoint, OfflineOptions(), progress=False)


def test_stamps_jumping_backwards_drop_out_of_order_frames_and_restart_on_a_loop(replay_clip_store,
                                                                              replay_checkpoint, tmp_path):
    """Header stamps as a misbehaving driver or a looped recording produce them: frame 30 is
    stamped 0.2 s before frame 29 (out of order: dropped), and from frame 45 on the stamps start
    over 4 s earlier (a loop: buffers reset). Log times keep increasing, as a recorder writes."""
    store = ClipStore(replay_clip_store)
    clip = store.load(store.all_clip_ids()[0])
    frames = 60
    period_ns = round(NS / store.fps)
    bag = tmp_path / "jumps"
    base = DEFAULT_START_EPOCH_S * NS
    with BagWriter(bag) as writer:
        for t in range(frames):
            stamp = base + t * period_ns - (round(0.2 * NS) if t == 30 else 0) - (4 * NS if t >= 45 else 0)
            log = base + t * period_ns
            writer.write("rgb/image_raw", bag_messages.image_message(clip.rgb[t], "rgb8", stamp, "cam"), log)
            writer.write("depth/image_raw", bag_messages.image_message(clip.depth[t], "16UC1", stamp, "cam"), log)
            writer.write("skeleton", bag_messages.skeleton_message(clip.skeleton[t], stamp, "cam"), log)
    run = run_offline(bag, replay_checkpoint, OfflineOptions(), progress=False)
    assert run.counters["dropped/rgb/stamp_backwards"] == 1
    assert run.counters["dropped/rgb/time_jump_reset"] == 1
    assert run.counters["restarts"] == 1
    assert run.counters["frame_sets"] == frames - 1
    stamps = [d["stamp"]["sec"] * NS + d["stamp"]["nanosec"] for d in run.documents]
    assert len(stamps) == frames - 1
    assert base + 29 * period_ns - round(0.2 * NS) not in stamps  # the out-of-order frame


def test_ground_truth_is_empty_for_a_bag_without_it(exported_bag, tmp_path):
    no_truth = tmp_path / "no_truth"
    _copy_bag(exported_bag, no_truth, lambda topic: topic != GROUND_TRUTH_TOPIC)
    assert ground_truth(BagReader(no_truth), GROUND_TRUTH_TOPIC) == []


def test_offline_eval_reads_a_bag_with_robot_topic_names(exported_bag, replay_checkpoint, tmp_path):
    from retf_ros.bags.conventions import ModalityTopics

    names = {"rgb/image_raw": "/camera/color/image_raw", "depth/image_raw": "/camera/depth/image_raw",
             "skeleton": "/body_tracker/skeleton"}
    robot = tmp_path / "robot"
    reader = BagReader(exported_bag)
    end = reader.summary.start_ns + NS
    with BagWriter(robot) as writer:
        for message in reader.messages(list(names)):
            if message.log_ns < end:
                writer.write_raw(names[message.topic], message.msgtype, message.log_ns, message.raw)
    topics = ModalityTopics(rgb=names["rgb/image_raw"], depth=names["depth/image_raw"],
                            skeleton=names["skeleton"])
    run = run_offline(robot, replay_checkpoint, OfflineOptions(topics=topics), progress=False)
    assert run.documents and all(set(d["modalities"].values()) == {"ok"} for d in run.documents[1:])
    with pytest.raises(RetfError, match="none of the model's input topics"):
        run_offline(robot, replay_checkpoint, OfflineOptions(), progress=False)


def test_a_failed_export_leaves_no_partial_bag(tmp_path):
    from retf_ros.data.clipstore import Clip, ClipStoreWriter

    writer = ClipStoreWriter(tmp_path / "store", ["a", "b"], {"fps": 10.0, "modalities": ["skeleton"],
                                                              "skeleton_layout": "kinect_v2_25"})
    joints = np.zeros((4, 25, 3), np.float32)
    writer.add(Clip("good", stamps=np.arange(4) / 10.0, labels=np.zeros(4, np.int64), skeleton=joints))
    writer.add(Clip("bad", stamps=np.array([0.0, 0.1, 0.1, 0.2]), labels=np.ones(4, np.int64), skeleton=joints))
    writer.finish()
    out = tmp_path / "bag"
    with pytest.raises(DataFormatError, match="bad.npz: stamps are not strictly increasing"):
        export_clip_store(tmp_path / "store", out, ExportOptions(clip_ids=("good", "bad")), progress=False)
    assert not out.exists()
