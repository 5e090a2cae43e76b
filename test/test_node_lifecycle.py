"""anticipation_node lifecycle with real processes: a pickle or missing checkpoint fails configure
and the node stays up; reconfigured with a good one it serves (a 15 Hz camera with other
encodings and the MarkerArray skeleton); refused parameters; SIGTERM; bad start-up values."""
from __future__ import annotations

import pickle
import shutil
import signal

import pytest

from retf_ros.client import validate_anticipation
from retf_ros.harness.processes import leftover_shm, node_argv, shm_files_of, start, start_session

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def pickle_checkpoint(tiny_checkpoint, tmp_path_factory):
    """A checkpoint pair whose weights file is a pickle (would run code if unpickled)."""
    folder = tmp_path_factory.mktemp("evil")
    shutil.copy(tiny_checkpoint.with_suffix(".json"), folder / "evil.json")
    (folder / "evil.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    return folder / "evil.safetensors"


@pytest.fixture(scope="module")
def session(ros_env_shared, pickle_checkpoint, unique_namespace, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("lifecycle")
    camera = ("--rate", "15", "--width", "96", "--height", "72", "--compressed", "--depth-encoding", "32FC1",
              "--bigendian", "--row-padding", "4", "--skeleton-type", "marker_array", "--reliability", "reliable")
    session = start_session(ros_env_shared, log_dir, namespace=unique_namespace, checkpoint=pickle_checkpoint,
                            overrides={"skeleton.type": "marker_array", "rgb.compressed": True, "diagnostics.rate_hz": 5.0,
                                       "torch_threads": 1},
                            camera_options=camera)
    try:
        yield session
    finally:
        session.stop()


def test_pickle_checkpoint_fails_configure_and_the_node_stays_up(session, pickle_checkpoint):
    diag = session.wait_for_diagnostics(lambda d: d["inference"]["level"] == 2, 60, "configure error in diagnostics")
    assert "pickle" in diag["inference"]["message"] and str(pickle_checkpoint) in diag["inference"]["message"]
    assert session.probe.command("state")["state"] == "unconfigured"
    assert "configure failed" in session.node.log() and "pickle" in session.node.log()
    assert session.anticipations() == []


def test_missing_checkpoint_fails_configure_naming_the_path(session, tmp_path):
    missing = tmp_path / "nowhere" / "model.safetensors"
    assert session.probe.command(f"set checkpoint {missing}")["success"] is True
    assert session.probe.command("transition configure")["success"] is False
    diag = session.wait_for_diagnostics(lambda d: str(missing) in d["inference"]["message"], 10,
                                        "missing checkpoint in diagnostics")
    assert diag["inference"]["level"] == 2
    assert session.probe.command("state")["state"] == "unconfigured"


@pytest.mark.parametrize("name, value", [("device", "tpu"), ("precision", "fp64"), ("sync.policy", "sometimes"),
                                         ("sync.slop_s", "-1.0"), ("sync.queue_size", "0")])
def test_invalid_parameter_values_are_refused_naming_the_parameter(session, name, value):
    reply = session.probe.command(f"set {name} {value}")
    assert reply["success"] is False
    assert name in reply["reason"]


def test_reconfigured_with_a_good_checkpoint_it_serves(session, tiny_checkpoint):
    assert session.probe.command(f"set checkpoint {tiny_checkpoint}")["success"] is True
    assert session.probe.command("transition configure")["success"] is True
    assert session.probe.command("transition activate")["success"] is True
    events = session.wait_for_anticipations(5, timeout=60)
    published = session.published_stamps()
    for event in events:
        doc = event["doc"]
        assert validate_anticipation(doc) == []
        assert doc["stamp"]["sec"] * 1_000_000_000 + doc["stamp"]["nanosec"] in published
    session.wait_for_anticipation(lambda doc: doc["modalities"] == {"rgb": "ok", "depth": "ok", "skeleton": "ok"},
                                  10, "anticipations with every modality ok")
    diag = session.wait_for_diagnostics(lambda d: d["inference"]["values"]["lifecycle_state"] == "active", 5, "active")
    assert diag["inference"]["level"] == 0
    assert 5 < float(diag["inputs"]["values"]["rgb.rate_hz"]) < 20  # camera at 15 Hz


def test_sigterm_exits_zero_without_leaking_shared_memory(session):
    segments = shm_files_of(session.node.pid)
    codes = session.stop(signal.SIGTERM)
    assert codes["node"] == 0, session.node.log()[-2000:]
    assert leftover_shm(segments) == set()


def test_invalid_value_at_start_up_exits_2_naming_the_parameter(ros_env, tmp_path):
    process = start("node", node_argv(overrides={"precision": "fp64", "autostart": False}), ros_env, tmp_path)
    assert process.popen.wait(60) == 2
    assert "precision" in process.log() and "fp64" in process.log()
