"""anticipation_node end to end: synthetic camera -> node -> probe, real processes over loopback
DDS. One node serves the tests of this module in order; each test leaves it serving."""
from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import yaml

from retf_ros.client import validate_anticipation
from retf_ros.harness.processes import leftover_shm, shm_files_of, wait_for

from conftest import serving_session

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(240)

# YAML values that differ from the defaults, and a -p override that beats the YAML.
YAML_CHANGES = {("sync", "queue_size"): 7, ("diagnostics", "rate_hz"): 2.0, ("diagnostics", "log_throttle_s"): 30.0,
                ("torch_threads",): 1}
OVERRIDES = {"diagnostics.rate_hz": 5.0}
ALL_OK = {"rgb": "ok", "depth": "ok", "skeleton": "ok"}


def _params_file(path: Path) -> Path:
    config = yaml.safe_load((REPO / "config" / "anticipation.yaml").read_text())
    params = config["/**"]["ros__parameters"]
    for keys, value in YAML_CHANGES.items():
        target = params
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def session(ros_env_shared, tiny_checkpoint, unique_namespace, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("pipeline")
    yield from serving_session(ros_env_shared, log_dir, namespace=unique_namespace, checkpoint=tiny_checkpoint,
                               params_file=_params_file(log_dir / "params.yaml"), overrides=OVERRIDES,
                               camera_options=("--rate", "30", "--width", "160", "--height", "120"), visuals=True)


def _stamp_ns(doc: dict) -> int:
    return doc["stamp"]["sec"] * 1_000_000_000 + doc["stamp"]["nanosec"]


def test_anticipations_are_valid_and_carry_source_stamps(session):
    events = session.wait_for_anticipations(10)
    published = session.published_stamps()
    for event in events:
        doc = event["doc"]
        assert validate_anticipation(doc) == []
        assert _stamp_ns(doc) in published
        # best-effort DDS may lose a frame on a busy machine: then that modality is stale, never missing
        assert doc["modalities"]["rgb"] == "ok" and set(doc["modalities"].values()) <= {"ok", "stale"}
        assert doc["frame_id"] == "camera_color_optical_frame"
        assert doc["window"]["fps"] == 15.0 and doc["horizon_s"] == 4.0
        assert 0 < doc["latency"]["end_to_end_ms"] < 5000
        assert doc["latency"]["end_to_end_ms"] * 1e6 <= event["received_ns"] - _stamp_ns(doc) + 1e6
    complete = [e for e in events if e["doc"]["modalities"] == ALL_OK]
    assert len(complete) >= 0.7 * len(events)
    stamps = [_stamp_ns(e["doc"]) for e in events]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_parameters_come_from_yaml_and_command_line_overrides_win(session):
    assert session.probe.command("get sync.queue_size")["value"] == 7
    assert session.probe.command("get torch_threads")["value"] == 1
    assert session.probe.command("get diagnostics.rate_hz")["value"] == 5.0
    assert session.probe.command("get sync.slop_s")["value"] == 0.03
    first = session.wait_for_diagnostics(lambda d: True, 5, "diagnostics")
    assert first
    received = [e["received_ns"] for e in session.probe.events("diagnostics")[-6:]]
    period_s = (received[-1] - received[0]) / 1e9 / (len(received) - 1)
    assert 0.1 < period_s < 0.35  # 5 Hz from the override, not 2 Hz from the YAML


def test_diagnostics_report_inputs_latency_device_and_erank(session):
    diag = session.wait_for_diagnostics(lambda d: "inference" in d and d["inference"]["values"]["windows_run"] != "0",
                                        10, "inference diagnostics")
    inputs = diag["inputs"]
    assert inputs["level"] == 0 and inputs["message"] == "all inputs ok"
    for modality in ("rgb", "depth", "skeleton"):
        assert inputs["values"][f"{modality}.state"] == "ok"
        assert 10 < float(inputs["values"][f"{modality}.rate_hz"]) < 40  # camera at 30 Hz (slower on a busy CPU)
        assert 0 <= float(inputs["values"][f"{modality}.stamp_age_s"]) < 2
    inference = diag["inference"]["values"]
    assert inference["device"] == "cpu" and inference["lifecycle_state"] == "active"
    assert float(inference["inference_ms.p50"]) <= float(inference["inference_ms.p95"]) <= float(inference["inference_ms.max"])
    assert int(inference["skipped_windows"]) >= 0
    erank = diag["effective rank"]
    assert erank["values"]["convention"] == "uncentred" and float(erank["values"]["fused"]) >= 1.0
    assert erank["level"] in (0, 1, 2)


def test_markers_and_debug_image_are_published_while_subscribed(session):
    session.wait_for_anticipations(3)
    published = session.published_stamps()
    markers = session.probe.events("markers")
    images = session.probe.events("debug_image")
    assert markers and images
    assert markers[-1]["texts"][0].startswith("now: ")
    assert markers[-1]["stamps"][0] in published
    assert images[-1]["stamp_ns"] in published
    assert (images[-1]["width"], images[-1]["height"], images[-1]["encoding"]) == (160, 120, "rgb8")


def test_stopped_depth_is_reported_missing_within_two_seconds_and_recovers(session):
    session.camera.send("stop depth")
    stopped = time.monotonic()
    session.wait_for_diagnostics(lambda d: d["inputs"]["values"].get("depth.state") == "missing", 5,
                                 "depth reported missing")
    assert time.monotonic() - stopped <= 2.0
    events = wait_for(lambda: [e for e in session.anticipations()[-50:] if e["doc"]["modalities"]["depth"] == "missing"],
                      10, "anticipations marked depth missing")
    assert validate_anticipation(events[-1]["doc"]) == []
    assert events[-1]["doc"]["modalities"]["rgb"] == "ok"
    session.camera.send("start depth")
    session.wait_for_diagnostics(lambda d: d["inputs"]["values"].get("depth.state") == "ok"
                                 and d["inputs"]["level"] == 0, 5, "depth back to ok")
    session.wait_for_anticipation(lambda doc: doc["modalities"] == ALL_OK, 10, "anticipations with depth ok again")


BAD_INPUT_DROPS = {
    "encoding": ["rgb/encoding"],
    "step_too_small": ["rgb/step_too_small"],
    "zero_size": ["rgb/zero_size"],
    "short_data": ["depth/data_too_short"],
    "invalid_depth": ["depth/depth_all_invalid"],
    "size_mismatch": ["depth/size_mismatch"],
    "joint_count": ["skeleton/joint_count"],
    "stamp_backwards": ["rgb/stamp_backwards", "depth/stamp_backwards", "skeleton/stamp_backwards"],
    "nan_depth": [],  # NaN / Inf pixels are invalid pixels of a usable frame, not a drop
}
REPEATS = 4


def test_bad_input_is_dropped_counted_logged_and_serving_continues(session):
    for kind in BAD_INPUT_DROPS:
        session.camera.send(f"bad {kind} {REPEATS}")
        time.sleep(REPEATS / 30 + 0.25)  # let the camera send them one after another
    expected = [reason for reasons in BAD_INPUT_DROPS.values() for reason in reasons]

    def counted(diag):
        values = diag["synchronisation"]["values"]
        return all(int(values.get(f"drops.{reason}", 0)) >= REPEATS for reason in expected)

    diag = session.wait_for_diagnostics(counted, 10, "every bad input counted in diagnostics")
    values = diag["synchronisation"]["values"]
    assert not any(key.startswith("drops.depth/") and key not in {f"drops.{r}" for r in expected} for key in values)
    assert not any(key.startswith("drops.frame/") for key in values)
    events = session.wait_for_anticipations(5)
    assert all(validate_anticipation(e["doc"]) == [] for e in events)
    session.wait_for_anticipation(lambda doc: doc["modalities"] == ALL_OK, 10, "complete anticipations")
    log = session.node.log()
    for reason in expected:
        modality, code = reason.split("/")
        lines = [line for line in log.splitlines() if f"dropped {modality} message" in line
                 and (code in line or code == "stamp_backwards" and "not newer" in line)]
        assert 1 <= len(lines) <= 2, (reason, lines)  # said once, then rate-limited (throttle 30 s)


def test_deactivate_stops_output_and_activate_resumes(session):
    assert session.probe.command("transition deactivate")["success"] is True
    assert session.probe.command("state")["state"] == "inactive"
    time.sleep(0.5)
    count = len(session.anticipations())
    time.sleep(1.0)
    assert len(session.anticipations()) == count
    session.wait_for_diagnostics(lambda d: d["inference"]["values"]["lifecycle_state"] == "inactive", 5,
                                 "inactive in diagnostics")
    assert session.probe.command("transition activate")["success"] is True
    events = session.wait_for_anticipations(5, timeout=60)
    assert validate_anticipation(events[-1]["doc"]) == []


def test_sigint_exits_zero_without_leaking_shared_memory(session):
    segments = shm_files_of(session.node.pid)
    assert segments
    codes = session.stop(signal.SIGINT)
    assert codes == {"node": 0, "camera": 0, "probe": 0}, session.node.log()[-2000:]
    assert leftover_shm(segments) == set()
