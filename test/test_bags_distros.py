"""Bags from any ROS 2 distro (retf_ros.bags.distros): definitions found, converted, played to the node."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import write_tiny_checkpoint
from old_bags import MARKER_ARRAY, NS, body_joints, kinect_messages, write_foxy_bag
from retf_ros.bags import messages as bag_messages
from retf_ros.bags.bagio import BagReader, BagWriter
from retf_ros.bags.distros import distro_typestore
from retf_ros.errors import DataFormatError
from retf_ros.fusion.skeleton import AZURE_KINECT_32
from retf_ros.runtime.messages import marker_array_to_skeleton

START_NS = 1_600_000_000 * NS
FRAMES = 40


def _kilted_bytes(frame: int) -> bytes:
    """What a Kilted Azure Kinect driver publishes for ``frame`` (padded as DDS delivers it)."""
    msg = bag_messages.marker_array_message({b: body_joints(frame, b) for b in range(2)},
                                            START_NS + round(frame * NS / 20), "depth_camera_link", "kilted")
    raw = bytes(distro_typestore("kilted").serialize_cdr(msg, MARKER_ARRAY))
    return raw + bytes(-len(raw) % 4)


@pytest.fixture(scope="module")
def foxy_bag(tmp_path_factory):
    """Foxy's rosbag2: sqlite3, metadata version 4, zstd file compression, no definitions."""
    return write_foxy_bag(tmp_path_factory.mktemp("foxy") / "kinect", kinect_messages(FRAMES, START_NS))


def _write_with_definitions(path, distro: str, storage: str, compression: str | None):
    with BagWriter(path, storage=storage, compression=compression, distro=distro) as writer:
        for topic, msgtype, log_ns, raw in kinect_messages(FRAMES, START_NS, distro=distro):
            writer.write_raw(topic.lstrip("/"), msgtype, log_ns, raw)
    return path


def test_foxy_bag_without_definitions_is_read_as_foxy_with_a_note_and_converted(foxy_bag):
    reader = BagReader(foxy_bag)
    assert (reader.summary.storage, reader.summary.metadata_version, reader.summary.compression) == \
        ("sqlite3", 4, "zstd file")
    assert reader.definitions.origin.startswith("foxy (default for a bag without definitions")
    assert reader.definitions.matches == ("foxy", "galactic")
    assert reader.definitions.needs_conversion == (MARKER_ARRAY,)
    assert any("stores no message definitions" in w and "--distro" in w for w in reader.warnings)
    messages = list(reader.messages())
    assert len(messages) == FRAMES
    for frame, message in enumerate(messages):
        assert reader.converted(message).raw == _kilted_bytes(frame)
        joints = marker_array_to_skeleton(reader.deserialize(message), AZURE_KINECT_32, body_id=1)
        np.testing.assert_allclose(joints, body_joints(frame, 1))


def test_distro_option_reads_a_definition_less_bag_without_the_default_note(foxy_bag):
    reader = BagReader(foxy_bag, distro="galactic")
    assert reader.definitions.origin == "galactic (--distro)"
    assert reader.definitions.needs_conversion == (MARKER_ARRAY,)
    assert not reader.warnings
    with pytest.raises(DataFormatError, match="unknown ROS 2 distro 'rolling'; known: foxy, galactic"):
        BagReader(foxy_bag, distro="rolling")


@pytest.mark.parametrize("storage,compression", [("mcap", "message"), ("mcap", None), ("sqlite3", "file"),
                                                 ("sqlite3", "message")])
def test_bag_with_stored_foxy_definitions_uses_them_in_any_storage_and_compression(tmp_path, storage, compression):
    bag = _write_with_definitions(tmp_path / "bag", "foxy", storage, compression)
    reader = BagReader(bag, distro="jazzy")  # the stored definitions win over --distro
    assert reader.summary.storage == storage
    assert reader.summary.compression == (f"zstd {compression}" if compression else None)
    assert reader.definitions.origin == "stored in the bag"
    assert reader.definitions.matches == ("foxy", "galactic")
    assert reader.definitions.needs_conversion == (MARKER_ARRAY,)
    assert reader.warnings == ["--distro jazzy not used: the bag carries its own message definitions"]
    assert [reader.converted(m).raw for m in reader.messages()] == [_kilted_bytes(f) for f in range(FRAMES)]


def test_bag_of_the_running_distro_is_played_byte_for_byte(tmp_path):
    reader = BagReader(_write_with_definitions(tmp_path / "bag", "kilted", "mcap", None))
    assert reader.definitions.needs_conversion == ()
    assert "kilted" in reader.definitions.matches
    message = next(reader.messages())
    assert reader.converted(message) is message


def test_bag_info_shows_storage_source_distro_and_conversions(foxy_bag):
    result = subprocess.run([sys.executable, "-m", "retf_ros", "bag", "info", str(foxy_bag)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "storage sqlite3, rosbag2 metadata version 4, zstd file compressed" in result.stdout
    assert "message definitions: foxy (default for a bag without definitions, rosbag2 metadata version 4); " \
           "same wire format as foxy, galactic" in result.stdout
    assert "converted to kilted's definitions: visualization_msgs/msg/MarkerArray" in result.stdout
    unknown = subprocess.run([sys.executable, "-m", "retf_ros", "bag", "info", str(foxy_bag), "--distro", "rolling"],
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == ("retf bag: error: unknown ROS 2 distro 'rolling'; "
                                      "known: foxy, galactic, humble, iron, jazzy, kilted")


def test_node_receives_every_message_of_a_foxy_marker_array_bag(foxy_bag, ros_env, tmp_path):
    """`retf bag play` converts Foxy's Markers; the real node (skeleton.type marker_array) counts
    every one of them as a received skeleton frame."""
    from retf_ros.harness.processes import node_argv, start, start_probe, wait_for

    checkpoint = write_tiny_checkpoint(tmp_path / "ckpt", modalities=("skeleton",), fps=20.0,
                                       skeleton_layout="azure_kinect_32")
    namespace = "/foxy"
    node = start("node", node_argv(overrides={"checkpoint": str(checkpoint), "skeleton.type": "marker_array",
                                              "sync.reference": "skeleton", "diagnostics.rate_hz": 5.0,
                                              "torch_threads": 1},
                                   remaps={"skeleton": "body_tracking_data"}) + ["-r", f"__ns:={namespace}"],
                 ros_env, tmp_path)
    probe = start_probe(ros_env, tmp_path, node_name=f"{namespace}/anticipation_node")
    try:
        player = subprocess.run([sys.executable, "-m", "retf_ros", "bag", "play", str(foxy_bag),
                                 "--wait-for-subscribers", "120", "--ros-args", "-r", f"__ns:={namespace}"],
                                env=ros_env, capture_output=True, text=True, timeout=240)
        assert player.returncode == 0, player.stderr
        assert f"published {FRAMES} messages" in player.stdout
        assert "converted to kilted's definitions: visualization_msgs/msg/MarkerArray" in player.stderr

        def skeleton_frames():
            for event in reversed(probe.events("diagnostics")):
                for status in event["status"]:
                    if status["name"].endswith("anticipation_node: inputs") and namespace in status["name"]:
                        return int(status["values"].get("skeleton.frames", 0))
            return 0
        wait_for(lambda: skeleton_frames() == FRAMES, 30, f"{FRAMES} skeleton frames in the node's diagnostics")
    finally:
        probe.stop()
        node.stop()
