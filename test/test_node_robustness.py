"""anticipation_node against a hostile publisher, real processes over loopback DDS: far-off
stamps (the exact reproduction of the issue: at 15 Hz, after each good frame set one extra
set stamped a day ahead, 0, or 5 s ago), non-finite joints, depth on the RGB topic; refusals
that name the parameter; SIGINT that stops inference before rclpy goes away. One node serves
the tests of this module in order."""
from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from retf_ros.client import validate_anticipation
from retf_ros.harness.processes import start_session, wait_for

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(240)
ALL_OK = {"rgb": "ok", "depth": "ok", "skeleton": "ok"}
BAD_SETS = 15  # one second of the 15 Hz stream per kind of bad stamp
WINDOW = 16    # the tiny checkpoint's window
# Reliable inputs with room to spare, so every bad frame reaches the node and the counts are exact.
RELIABLE = {f"qos.{m}.{key}": value for m in ("rgb", "depth", "skeleton")
            for key, value in (("reliability", "reliable"), ("depth", 10))}


@pytest.fixture(scope="module")
def session(ros_env_shared, tiny_checkpoint, unique_namespace, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("robustness")
    session = start_session(ros_env_shared, log_dir, namespace=unique_namespace, checkpoint=tiny_checkpoint,
                            overrides={"diagnostics.rate_hz": 5.0, "torch_threads": 1, **RELIABLE},
                            camera_options=("--rate", "15", "--width", "64", "--height", "48",
                                            "--reliability", "reliable"))
    try:
        session.wait_for_anticipation(lambda doc: doc["modalities"] == ALL_OK and doc["window"]["frames"] == WINDOW,
                                      timeout=150, what="a full window with every modality ok")
        yield session
    finally:
        session.stop()


def _stamp_ns(doc: dict) -> int:
    return doc["stamp"]["sec"] * 1_000_000_000 + doc["stamp"]["nanosec"]


def _sync_values(session) -> dict[str, str]:
    return session.wait_for_diagnostics(lambda d: True, 5, "diagnostics")["synchronisation"]["values"]


def test_far_off_stamps_are_dropped_never_published_and_never_reset_the_node(session):
    before = len(session.anticipations())
    seen_diagnostics = len(session.diagnostics())
    for kind in ("stamp_day_ahead", "stamp_zero", "stamp_5s_ago"):   # one after another, a second each
        session.camera.send(f"bad {kind} {BAD_SETS}")
        time.sleep(BAD_SETS / 15 + 0.1)

    def all_counted(diag):
        values = diag["synchronisation"]["values"]
        return all(int(values.get(f"drops.{m}/stamp_in_future", 0)) >= BAD_SETS
                   and int(values.get(f"drops.{m}/stamp_too_old", 0)) >= 2 * BAD_SETS
                   for m in ("rgb", "depth", "skeleton"))

    diag = session.wait_for_diagnostics(all_counted, 30, "every bad-stamp frame counted")
    session.wait_for_anticipations(3)
    values = diag["synchronisation"]["values"]
    for m in ("rgb", "depth", "skeleton"):
        assert (int(values[f"drops.{m}/stamp_in_future"]), int(values[f"drops.{m}/stamp_too_old"])) == \
            (BAD_SETS, 2 * BAD_SETS)
    assert values["buffer_resets"] == "0" and not any(k.startswith("resets.") for k in values)
    assert not any("time_jump_reset" in k for k in values)
    events = session.anticipations()[before:]
    good = session.published_stamps()
    assert len(events) >= 2 * BAD_SETS  # the model's 15 fps went on over the three seconds of bad sets
    for event in events:
        doc = event["doc"]
        assert validate_anticipation(doc) == []
        assert _stamp_ns(doc) in good                           # no anticipation with a bad stamp
        assert 0 < doc["latency"]["end_to_end_ms"] < 5000
        assert doc["window"]["frames"] == WINDOW                # full windows throughout: nothing reset
        assert doc["erank"]["fused"] is not None
    # The inputs status told the truth meanwhile: WARN naming the bad stamps, sane stamp ages.
    during = session.diagnostics()[seen_diagnostics:]
    warned = [d["inputs"] for d in during if "implausible stamps" in d["inputs"]["message"]]
    assert warned and all(w["level"] == 1 and "all inputs ok" not in w["message"] for w in warned)
    assert all(abs(float(d["inputs"]["values"]["rgb.stamp_age_s"])) < 2 for d in during)
    log = session.node.log()
    assert "dropped rgb message: stamp_in_future" in log and "dropped depth message: stamp_too_old" in log
    assert "buffers reset" not in log
    # the reasons are the documented ones
    catalogue = (REPO / "docs" / "node.md").read_text()
    assert "| `stamp_in_future` |" in catalogue and "| `stamp_too_old` |" in catalogue


def test_non_finite_joints_are_dropped_and_partly_non_finite_ones_masked_and_counted(session):
    for command in ("bad nan_joints 3", "bad inf_joints 3", "bad some_nan_joints 4"):
        session.camera.send(command)
        time.sleep(0.4)  # each on frames of its own
    diag = session.wait_for_diagnostics(
        lambda d: int(d["synchronisation"]["values"].get("drops.skeleton/nonfinite_joints", 0)) >= 6
        and int(d["inputs"]["values"]["skeleton.masked_joint_frames"]) >= 4, 15, "non-finite joints counted")
    assert int(diag["synchronisation"]["values"]["drops.skeleton/nonfinite_joints"]) == 6
    assert int(diag["inputs"]["values"]["skeleton.masked_joint_frames"]) == 4
    assert not any(k.startswith("drops.frame/") for k in diag["synchronisation"]["values"])
    assert "| `nonfinite_joints` |" in (REPO / "docs" / "node.md").read_text()
    session.wait_for_anticipation(lambda doc: doc["modalities"] == ALL_OK, 10, "complete anticipations again")


def test_depth_encoding_on_the_rgb_topic_is_an_encoding_drop(session):
    session.camera.send("bad depth_on_rgb 4")
    diag = session.wait_for_diagnostics(
        lambda d: int(d["synchronisation"]["values"].get("drops.rgb/encoding", 0)) >= 4, 15, "rgb/encoding counted")
    assert "drops.rgb/depth_all_invalid" not in diag["synchronisation"]["values"]
    assert "16UC1 is not a colour encoding" in session.node.log()


@pytest.mark.parametrize("name, value, words", [
    ("device", "cuda:7", ["parameter 'device'", "cuda:7"]),
    ("sync.queue_size", "abc", ["parameter 'sync.queue_size'", "integer", "'abc'"]),
    ("sync.slop_s", "1", ["parameter 'sync.slop_s'", "double"]),
    ("sync.slopp_s", "0.1", ["unknown parameter 'sync.slopp_s'"]),
])
def test_refusals_name_the_parameter(session, name, value, words):
    reply = session.probe.command(f"set {name} {value}")
    assert reply["success"] is False
    assert all(word in reply["reason"] for word in words), reply["reason"]


def test_sigint_stops_inference_before_the_context_goes_away(session):
    session.wait_for_anticipations(2)
    codes = session.stop(signal.SIGINT)
    assert codes["node"] == 0
    log = session.node.log()
    assert "inference stopped" in log
    assert "context is invalid" not in log and "inference failed" not in log
    wait_for(lambda: not session.node.alive(), 5, "the node to exit")
