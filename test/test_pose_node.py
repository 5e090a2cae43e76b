"""pose_node end to end on a real RGB-D frame: camera (the PCL Kinect frame of five people, with
its CameraInfo) -> pose_node -> anticipation_node -> probe, real processes over loopback DDS.
One session serves the tests of this module in order; each test leaves it serving."""
from __future__ import annotations

import math
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from retf_ros.harness.processes import (POSE_NODE_MODULE, leftover_shm, node_argv, shm_files_of, start_probe,
                                    start_session, wait_for)

pytestmark = pytest.mark.timeout(300)
RATE_HZ = 6
FRAME = "camera_color_optical_frame"


@pytest.fixture(scope="module")
def real_frame(shared_data):
    from retf_ros.data.pcd import read_rgbd

    return read_rgbd(shared_data / "pcl" / "five_people.pcd")


@pytest.fixture(scope="module")
def session(ros_env_shared, tiny_checkpoint, unique_namespace, tmp_path_factory, shared_data):
    pytest.importorskip("mediapipe", reason="MediaPipe is not installed (requirements-pose.txt)")
    log_dir = tmp_path_factory.mktemp("pose")
    # CameraInfo is held back at first: the first test checks the node without it.
    session = start_session(ros_env_shared, log_dir, namespace=unique_namespace, checkpoint=tiny_checkpoint,
                            overrides={"skeleton.layout": "mediapipe_33", "torch_threads": 1},
                            camera_options=("--pcd", str(shared_data / "pcl" / "five_people.pcd"),
                                            "--rate", str(RATE_HZ), "--modalities", "rgb,depth"),
                            pose_overrides={"diagnostics.rate_hz": 4.0, "diagnostics.log_throttle_s": 30.0})
    try:
        yield session
    finally:
        session.stop()


def _pose_diagnostics(session, predicate, timeout, what):
    return session.wait_for_diagnostics(predicate, timeout, what, node="pose_node")


def test_without_camera_info_frames_are_dropped_with_a_clear_diagnostic(session):
    diag = _pose_diagnostics(session, lambda d: d["inputs"]["values"].get("rgb.state") == "ok"
                             and int(d["synchronisation"]["values"].get("drops.camera_info/no_camera_info", 0)) > 0,
                             120, "frames dropped for want of a CameraInfo")
    assert diag["pose"]["level"] == 1 and "no CameraInfo" in diag["pose"]["message"]
    assert diag["pose"]["values"]["camera_info"] == "none"
    assert session.skeletons() == []
    wait_for(lambda: "no CameraInfo received yet" in session.pose.log(), 10, "the log line")
    session.camera.send("start camera_info")


def _finite(joints) -> list[int]:
    return [j for j, p in enumerate(joints) if all(math.isfinite(c) for c in p)]


def test_published_joints_lie_on_the_people(session, real_frame):
    event = session.wait_for_skeleton(lambda e: len(e["joints"]) == 33, 60, "a PoseArray with a person")
    assert event["stamp_ns"] in session.published_stamps() and event["frame_id"] == FRAME
    joints = np.array(event["joints"], np.float64)
    found = _finite(event["joints"])
    assert len(found) >= 15
    k, points = real_frame.intrinsics, real_frame.points
    for j in found:
        x, y, z = joints[j]
        u, v = round(k.fx * x / z + k.cx), round(k.fy * y / z + k.cy)
        near = points[max(0, v - 2):v + 3, max(0, u - 2):u + 3].reshape(-1, 3)
        near = near[np.isfinite(near).all(axis=1)]
        # on the person: within 3 cm of the cloud's own points around the joint's pixel
        assert len(near) and np.linalg.norm(near - joints[j], axis=1).min() < 0.03, j
    diag = _pose_diagnostics(session, lambda d: d["pose"]["values"]["detection_rate"] != "n/a", 10,
                             "a detection rate")
    pose = diag["pose"]
    assert pose["level"] == 0 and pose["values"]["camera_info"] == "640x480" and pose["values"]["layout"] == "mediapipe_33"
    assert float(pose["values"]["detection_rate"]) > 0.9 and float(pose["values"]["landmarks_with_depth"]) >= 15
    assert 0 < float(pose["values"]["process_ms.p50"]) < 2000


def test_anticipation_node_reads_the_pose_skeleton(session):
    doc = session.wait_for_anticipation(lambda d: d["modalities"].get("skeleton") == "ok", 90,
                                        "an anticipation with the skeleton from pose_node")
    assert doc["frame_id"] == FRAME
    stamp = doc["stamp"]["sec"] * 1_000_000_000 + doc["stamp"]["nanosec"]
    assert stamp in session.published_stamps()


def test_nobody_in_view_gives_an_empty_pose_array_and_serving_continues(session):
    session.camera.send(f"bad nobody {3 * RATE_HZ}")
    empty = session.wait_for_skeleton(lambda e: e["joints"] == [], 30, "an empty PoseArray")
    assert empty["frame_id"] == FRAME and empty["stamp_ns"] in session.published_stamps()
    session.wait_for_skeleton(lambda e: len(e["joints"]) == 33, 60, "the person again")
    diag = _pose_diagnostics(session, lambda d: True, 5, "diagnostics")
    assert 0 < float(diag["pose"]["values"]["detection_rate"]) < 1
    assert "frame/estimation_error" not in str(diag["synchronisation"]["values"])


BAD_DEPTH_DROPS = {"size_mismatch": "depth/size_mismatch", "invalid_depth": "depth/depth_all_invalid",
                   "short_data": "depth/data_too_short", "encoding": "rgb/encoding"}


def test_bad_input_is_dropped_counted_and_serving_continues(session):
    for kind in (*BAD_DEPTH_DROPS, "nan_depth"):
        session.camera.send(f"bad {kind} 2")
        time.sleep(2 / RATE_HZ + 0.2)

    def counted(diag):
        values = diag["synchronisation"]["values"]
        return all(int(values.get(f"drops.{reason}", 0)) >= 2 for reason in BAD_DEPTH_DROPS.values())

    diag = _pose_diagnostics(session, counted, 15, "every bad input counted in pose_node's diagnostics")
    assert not any(key.startswith("drops.frame/") for key in diag["synchronisation"]["values"])
    session.wait_for_skeleton(lambda e: len(_finite(e["joints"])) >= 15, 30, "a full skeleton after bad input")
    for reason in ("size_mismatch", "depth_all_invalid"):
        wait_for(lambda: reason in session.pose.log(), 10, f"a log line about {reason}")


def test_far_off_stamps_are_dropped_by_pose_node_never_published_and_never_reset_it(session):
    # the camera adds one extra RGB + depth (+ CameraInfo) set stamped a day ahead / 5 s ago after each good one
    before = len(session.skeletons())
    for kind in ("stamp_day_ahead", "stamp_5s_ago"):
        session.camera.send(f"bad {kind} {RATE_HZ}")
        time.sleep(1 + 0.2)

    def counted(diag):
        values = diag["synchronisation"]["values"]
        return all(int(values.get(f"drops.{m}/{reason}", 0)) > 0
                   for m in ("rgb", "depth") for reason in ("stamp_in_future", "stamp_too_old"))

    diag = _pose_diagnostics(session, counted, 20, "far-off stamps counted in pose_node's diagnostics")
    assert diag["synchronisation"]["values"]["buffer_resets"] == "0"
    assert not any(key.startswith("resets.") for key in diag["synchronisation"]["values"])
    session.wait_for_skeleton(lambda e: len(e["joints"]) == 33, 30, "PoseArrays after the bad stamps")
    good = session.published_stamps()
    assert all(event["stamp_ns"] in good for event in session.skeletons()[before:])
    assert "dropped rgb message: stamp_in_future" in session.pose.log()


def test_markers_while_subscribed_and_lifecycle_of_pose_node(session, ros_env_shared):
    # a second probe, on pose_node: its markers and its lifecycle services
    probe = start_probe(ros_env_shared, session.log_dir / "pose_probe", node_name=f"{session.namespace}/pose_node",
                        visuals=True)
    try:
        markers = wait_for(lambda: probe.events("markers"), 30, "pose_node markers")
        assert markers[-1]["stamps"][0] in session.published_stamps()
        # refusals name the parameter (shared with anticipation_node: retf_ros/ros/lifecycle.py)
        unknown = probe.command("set lifting.patch_radiuss 3")
        assert unknown["success"] is False and unknown["reason"] == (
            "unknown parameter 'lifting.patch_radiuss': pose_node declares only the parameters listed in "
            "config/pose.yaml")
        wrong_type = probe.command("set lifting.patch_radius abc")
        assert wrong_type["success"] is False
        assert "parameter 'lifting.patch_radius' must be an integer" in wrong_type["reason"]
        assert probe.command("transition deactivate")["success"] is True
        time.sleep(1.0)
        count = len(session.skeletons())
        time.sleep(1.5)
        assert len(session.skeletons()) == count
        assert probe.command("transition activate")["success"] is True
        session.wait_for_skeleton(lambda e: len(e["joints"]) == 33, 30, "PoseArrays again after activate")
    finally:
        probe.stop()


def test_a_bad_parameter_value_is_refused_at_start_up(ros_env_shared):
    argv = node_argv(overrides={"lifting.patch_radius": 99}, command=[sys.executable, "-m", POSE_NODE_MODULE])
    result = subprocess.run(argv, env=ros_env_shared, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "lifting.patch_radius" in result.stderr


def test_sigint_exits_zero_without_leaking_shared_memory(session):
    segments = shm_files_of(session.pose.pid)
    codes = session.stop(signal.SIGINT)
    assert codes == {"node": 0, "pose": 0, "camera": 0, "probe": 0}, session.pose.log()[-2000:]
    assert "pose estimation stopped" in session.pose.log()   # the worker first, then the context
    assert leftover_shm(segments) == set()


def test_camera_info_gives_the_intrinsics_and_an_uncalibrated_one_is_refused():
    from sensor_msgs.msg import CameraInfo

    from retf_ros.pose.lifting import PinholeIntrinsics
    from retf_ros.ros.pose_node import intrinsics_from_camera_info
    from retf_ros.runtime.messages import InvalidMessage

    info = CameraInfo(width=640, height=480, k=[525.0, 0.0, 319.5, 0.0, 526.0, 239.5, 0.0, 0.0, 1.0])
    assert intrinsics_from_camera_info(info) == PinholeIntrinsics(525.0, 526.0, 319.5, 239.5, 640, 480)
    with pytest.raises(InvalidMessage) as refused:
        intrinsics_from_camera_info(CameraInfo(width=640, height=480))  # K all zero: never calibrated
    assert refused.value.reason == "camera_info"


def test_pose_array_keeps_missing_joints_as_nan_and_nobody_as_empty():
    from std_msgs.msg import Header

    from retf_ros.ros.pose_node import pose_array
    from retf_ros.runtime.messages import pose_array_to_skeleton

    joints = np.arange(99, dtype=np.float32).reshape(33, 3)
    joints[5] = np.nan
    msg = pose_array(joints, Header(frame_id="cam"))
    assert len(msg.poses) == 33 and msg.poses[0].orientation.w == 1.0
    np.testing.assert_array_equal(pose_array_to_skeleton(msg, "mediapipe_33"), joints)
    assert len(pose_array(np.zeros((0, 3), np.float32), Header()).poses) == 0


def test_pose_demo_runs_frames_through_both_nodes(ros_env, shared_data, tmp_path):
    pytest.importorskip("mediapipe", reason="MediaPipe is not installed (requirements-pose.txt)")
    result = subprocess.run([sys.executable, "-m", "retf_ros", "demo", "--pose", "--pcd",
                             str(shared_data / "pcl" / "five_people.pcd"), "--duration", "6", "--report",
                             str(tmp_path / "demo"), "--domain-id", ros_env["ROS_DOMAIN_ID"]],
                            env=ros_env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = next(line for line in result.stdout.splitlines() if line.startswith("pose_node: ") and "a person in" in line)
    arrays, with_person = (int(n) for n in re.match(r"pose_node: (\d+) PoseArrays, a person in (\d+)", summary).groups())
    assert arrays > 0 and with_person > 0
    anticipations = next(line for line in result.stdout.splitlines() if line.startswith("anticipation_node: "))
    count, with_skeleton = (int(n) for n in re.match(r"anticipation_node: (\d+) anticipations, skeleton 'ok' in (\d+)",
                                                       anticipations).groups())
    assert count > 0 and with_skeleton > 0, result.stdout[-3000:]
