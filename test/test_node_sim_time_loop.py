"""A looped bag replayed with /clock to anticipation_node under use_sim_time, real processes over
loopback DDS: each time the clock goes back the node resets its buffers once (counted as
``resets.clock_back``) and serves the new loop from a fresh window; nothing else resets it."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from retf_ros.client import validate_anticipation
from retf_ros.replay import bag_messages
from retf_ros.replay.bagio import BagWriter
from retf_ros.ros.processes import AnticipationSession, node_argv, start, start_probe

pytestmark = pytest.mark.timeout(240)
NS = 1_000_000_000
RATE_HZ = 15
LOOP_FRAMES = 30   # a two-second bag
WINDOW = 16        # the tiny checkpoint's window
PLAYER = [sys.executable, "-m", "retf_ros.ros.bag_player"]


@pytest.fixture(scope="module")
def looped_bag(tmp_path_factory):
    """Two seconds of RGB, depth and skeleton at 15 Hz (stamps = log times, as a recorder writes)."""
    bag = tmp_path_factory.mktemp("loop_bag") / "loop"
    base = 1_767_225_600 * NS
    rng = np.random.default_rng(0)
    with BagWriter(bag) as writer:
        for i in range(LOOP_FRAMES):
            stamp = base + i * NS // RATE_HZ
            writer.write("rgb/image_raw", bag_messages.image_message(
                rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), "rgb8", stamp, "cam"), stamp)
            writer.write("depth/image_raw", bag_messages.image_message(
                np.full((24, 32), 1500, np.uint16), "16UC1", stamp, "cam"), stamp)
            writer.write("skeleton", bag_messages.skeleton_message(
                rng.normal(0, 0.3, (25, 3)).astype(np.float32), stamp, "cam"), stamp)
    return bag, {base + i * NS // RATE_HZ for i in range(LOOP_FRAMES)}


@pytest.fixture(scope="module")
def session(ros_env_shared, tiny_checkpoint, unique_namespace, looped_bag, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("sim_time_loop")
    bag, _ = looped_bag
    overrides = {"checkpoint": str(tiny_checkpoint), "use_sim_time": True, "diagnostics.rate_hz": 5.0,
                 "torch_threads": 1}
    node = start("node", node_argv(overrides=overrides) + ["-r", f"__ns:={unique_namespace}"], ros_env_shared,
                 log_dir)
    probe = start_probe(ros_env_shared, log_dir, node_name=f"{unique_namespace}/anticipation_node")
    player = start("player", [*PLAYER, str(bag), "--loop", "--clock", "--wait-for-subscribers", "120",
                              "--ros-args", "-r", f"__ns:={unique_namespace}"], ros_env_shared, log_dir)
    session = AnticipationSession(unique_namespace, node, player, probe, log_dir / "unused", log_dir)
    try:
        yield session
    finally:
        session.stop()


def test_each_loop_resets_the_node_once_and_starts_a_fresh_window(session, looped_bag):
    _, bag_stamps = looped_bag
    diag = session.wait_for_diagnostics(
        lambda d: int(d["synchronisation"]["values"].get("resets.clock_back", 0)) >= 2, 150, "two loops")
    values = diag["synchronisation"]["values"]
    assert "resets.stream_jump" not in values
    assert int(values["buffer_resets"]) == int(values["resets.clock_back"])
    docs = [e["doc"] for e in session.anticipations()]
    assert docs and all(validate_anticipation(doc) == [] for doc in docs)
    assert all(doc["stamp"]["sec"] * NS + doc["stamp"]["nanosec"] in bag_stamps for doc in docs)
    frames = [doc["window"]["frames"] for doc in docs]
    full = frames.index(WINDOW)   # the first loop (two seconds) fills the window...
    assert min(frames[full:]) < WINDOW // 2   # ...and a later loop starts a fresh one
