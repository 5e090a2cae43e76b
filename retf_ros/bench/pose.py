"""Pose benchmark (`make bench` section "pose"): what pose_node costs per frame, and how old the
anticipations are when their skeleton comes from pose_node. Needs MediaPipe
(requirements-pose.txt) and a real RGB-D frame (five_people.pcd of ../shared/data, or
$RETF_SHARED_DATA); skipped with a line saying why otherwise.

1. In process, no DDS: MediaPipe + depth lifting on the real 640x480 frame and on a 480x360
   window of it, in tracking mode (the node's default: the detector runs only when the track is
   lost) and per image (detector every frame): median ms per frame.
2. The real processes over loopback DDS for RETF_BENCH_POSE_S seconds (default 20): the PCL
   frame as a panning VGA camera at 10 Hz -> pose_node -> anticipation_node (shipped demo
   checkpoint) -> probe: pose_node's per-frame cost and CPU use, the PoseArrays' age at the
   subscriber, and the anticipations' end-to-end age (node and subscriber) with the share whose
   skeleton was 'ok'. MediaPipe's Python pose solution runs on the CPU only: there is no GPU
   figure for it, with or without --gpu.
"""
from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path

import torch

from retf_ros.bench import machine_description, median_ms
from retf_ros.bench.node import _percentiles
from retf_ros.data.pcd import read_rgbd
from retf_ros.harness.loopback import loopback_environment
from retf_ros.harness.processes import environment_for, start_session, wait_for
from retf_ros.pose.estimator import MediaPipePose
from retf_ros.pose.lifting import lift_landmarks
from retf_ros.replay.demo import default_params_file, shipped_checkpoint
from retf_ros.replay.pose_demo import default_pcd
from retf_ros.runtime.anticipation import document_stamp_ns

CAMERA_HZ = 10


def _in_process(frame) -> None:
    window = frame.crop(80, 60, 480, 360)
    cpu = torch.device("cpu")
    for tracking in (True, False):
        estimator = MediaPipePose(tracking=tracking)
        try:
            for view in (frame, window):
                def one():
                    landmarks = estimator.estimate(view.rgb)
                    return landmarks and lift_landmarks(landmarks.pixels, landmarks.visibility, view.depth,
                                                        view.intrinsics)

                ms = median_ms(one, cpu, repeats=30, warmup=3)
                found = estimator.estimate(view.rgb)
                lifting = "nobody found" if found is None else "of which lifting {:.2f} ms".format(median_ms(
                    lambda: lift_landmarks(found.pixels, found.visibility, view.depth, view.intrinsics), cpu, 30))
                print(f"[pose] in process, {view.rgb.shape[1]}x{view.rgb.shape[0]}, "
                      f"{'tracking' if tracking else 'detector every frame'}: {ms:.1f} ms per frame ({lifting})",
                      flush=True)
        finally:
            estimator.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pipeline(pcd: Path, seconds: float, threads: int) -> None:
    with tempfile.TemporaryDirectory(prefix="retf_bench_pose_") as tmp:
        work = Path(tmp)
        env = environment_for(loopback_environment(random.randint(60, 99), work / "ros_log"))
        session = start_session(env, work, namespace=f"/retf_bench_pose_{os.getpid()}",
                                checkpoint=shipped_checkpoint(), params_file=default_params_file(),
                                overrides={"skeleton.layout": "mediapipe_33", "device": "cpu",
                                           "torch_threads": threads, "diagnostics.rate_hz": 2.0},
                                camera_options=("--pcd", str(pcd), "--width", "600", "--height", "480",
                                                "--pan", "20", "--rate", str(CAMERA_HZ)),
                                pose_overrides={"diagnostics.rate_hz": 2.0})
        try:
            wait_for(lambda: session.check_running() and len(session.anticipations()) >= 3, 180,
                     "the first anticipations")
            start_ns, cpu_before, wall_before = time.time_ns(), _cpu_seconds(session.pose.pid), time.monotonic()
            time.sleep(seconds)
            cpu_share = (_cpu_seconds(session.pose.pid) - cpu_before) / (time.monotonic() - wall_before)
            skeletons = [e for e in session.skeletons() if e["received_ns"] >= start_ns]
            events = [e for e in session.anticipations() if e["received_ns"] >= start_ns and "doc" in e]
            pose = session.diagnostics("pose_node")[-1]["pose"]["values"]
        finally:
            session.stop()
    skeleton_age = [(e["received_ns"] - e["stamp_ns"]) / 1e6 for e in skeletons]
    node_ms = [e["doc"]["latency"]["end_to_end_ms"] for e in events]
    probe_ms = [(e["received_ns"] - document_stamp_ns(e["doc"])) / 1e6 for e in events]
    with_skeleton = sum(e["doc"]["modalities"].get("skeleton") == "ok" for e in events)
    print(f"[pose] pipeline, 600x480 at {CAMERA_HZ} Hz over {seconds:.0f} s: pose_node {len(skeletons)} PoseArrays "
          f"({len(skeletons) / seconds:.1f}/s), per frame p50 {pose['process_ms.p50']} / p95 {pose['process_ms.p95']} ms, "
          f"CPU {100 * cpu_share:.0f}% of one core, person in {float(pose['detection_rate']) * 100:.0f}% of frames, "
          f"{pose['landmarks_with_depth']} of 33 landmarks with depth; PoseArray age at the subscriber "
          f"{_percentiles(skeleton_age)}", flush=True)
    print(f"[pose] anticipations with the skeleton from pose_node: {len(events)}, skeleton 'ok' in {with_skeleton}; "
          f"end-to-end (node) {_percentiles(node_ms)}; at the subscriber {_percentiles(probe_ms)}", flush=True)


def run(args) -> None:
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        print("[pose] skipped: MediaPipe is not installed (pip install --no-deps -r requirements-pose.txt)")
        return
    pcd = default_pcd()
    if pcd is None:
        print("[pose] skipped: no five_people.pcd in ../shared/data next to the checkout or in $RETF_SHARED_DATA")
        return
    threads = getattr(args, "threads", 2)
    print(f"[pose] machine: {machine_description()}; frame {pcd}")
    if getattr(args, "gpu", False):
        print("[pose] no GPU figure: MediaPipe's Python pose solution runs on the CPU only (make bench measures it)")
        return
    _in_process(read_rgbd(pcd))
    try:
        import rclpy  # noqa: F401
    except ImportError:
        print("[pose] pipeline skipped: rclpy is not installed here")
        return
    _pipeline(pcd, float(os.environ.get("RETF_BENCH_POSE_S", 20)), threads)
