"""A looped bag replayed to anticipation_node, real processes over loopback DDS. With /clock and
use_sim_time: each time the clock goes back the node resets its buffers once (counted as
``resets.clock_back``) and serves the new loop from a fresh window; nothing else resets it.
Without /clock (stamps far behind the node's wall clock): the node follows the bag's clock after
``stamps.jump_frames`` frames, once at the start and once per loop (``resets.stream_jump``)."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from retf_ros.client import validate_anticipation
from retf_ros.bags import messages as bag_messages
from retf_ros.bags.bagio import BagWriter
from retf_ros.harness.processes import AnticipationSession, node_argv, start, start_probe

pytestmark = pytest.mark.timeout(240)
NS = 1_000_000_000
RATE_HZ = 15
LOOP_FRAMES = 30   # a two-second bag
WINDOW = 16        # the tiny checkpoint's window
PLAYER = [sys.executable, "-m", "retf_ros.bags.player"]


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


def _replay(env, log_dir, namespace: str, checkpoint, bag, sim_time: bool) -> AnticipationSession:
    """Node (use_sim_time as given), probe and a looping player (--clock with sim time)."""
    overrides = {"checkpoint": str(checkpoint), "use_sim_time": sim_time, "diagnostics.rate_hz": 5.0,
                 "torch_threads": 1}
    node = start("node", node_argv(overrides=overrides) + ["-r", f"__ns:={namespace}"], env, log_dir)
    probe = start_probe(env, log_dir, node_name=f"{namespace}/anticipation_node")
    clock = ["--clock"] if sim_time else []
    player = start("player", [*PLAYER, str(bag), "--loop", *clock, "--wait-for-subscribers", "120",
                              "--ros-args", "-r", f"__ns:={namespace}"], env, log_dir)
    return AnticipationSession(namespace, node, player, probe, log_dir / "unused", log_dir)


def _check_loops(session, bag_stamps, reason: str, other: str) -> None:
    diag = session.wait_for_diagnostics(
        lambda d: int(d["synchronisation"]["values"].get(f"resets.{reason}", 0)) >= 2, 150, f"two {reason} resets")
    values = diag["synchronisation"]["values"]
    assert f"resets.{other}" not in values
    assert int(values["buffer_resets"]) == int(values[f"resets.{reason}"])
    docs = [e["doc"] for e in session.anticipations()]
    assert docs and all(validate_anticipation(doc) == [] for doc in docs)
    assert all(doc["stamp"]["sec"] * NS + doc["stamp"]["nanosec"] in bag_stamps for doc in docs)
    frames = [doc["window"]["frames"] for doc in docs]
    full = frames.index(WINDOW)   # the first loop (two seconds) fills the window...
    assert min(frames[full:]) < WINDOW // 2   # ...and a later loop starts a fresh one


def test_with_clock_each_loop_resets_the_node_once_and_starts_a_fresh_window(ros_env, tiny_checkpoint, looped_bag,
                                                                            tmp_path):
    bag, bag_stamps = looped_bag
    session = _replay(ros_env, tmp_path, f"/retf_loop_{tmp_path.name}", tiny_checkpoint, bag, sim_time=True)
    try:
        _check_loops(session, bag_stamps, "clock_back", "stream_jump")
    finally:
        session.stop()


def test_without_clock_the_node_follows_the_bags_clock_at_the_start_and_after_each_loop(ros_env, tiny_checkpoint,
                                                                                       looped_bag, tmp_path):
    bag, bag_stamps = looped_bag
    session = _replay(ros_env, tmp_path, f"/retf_loop_{tmp_path.name}", tiny_checkpoint, bag, sim_time=False)
    try:
        _check_loops(session, bag_stamps, "stream_jump", "clock_back")
        assert "dropped rgb message: stamp_too_old" in session.node.log()
    finally:
        session.stop()
