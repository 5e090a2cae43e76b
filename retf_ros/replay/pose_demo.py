"""`retf demo --pose`: camera frames through pose_node and anticipation_node together.

MediaPipe does not find a person in the synthetic scene's block figure, so this demo uses a
real registered RGB-D frame instead: the PCL Kinect frame of five people walking down a
corridor (``--pcd``, by default ``../shared/data/pcl/five_people.pcd`` next to the checkout).
The synthetic camera (retf_ros.harness.synthetic_publisher) publishes a 480x360 window panning
across it, with the window's CameraInfo, at ``--rate`` Hz: a moving camera over still people.
pose_node lifts the landmarks of the person MediaPipe picks; anticipation_node (shipped demo
checkpoint, ``skeleton.layout: mediapipe_33``) reads RGB, depth and that skeleton. One line
per anticipation and per second of skeletons is printed, then a summary.

What it shows is the plumbing: a skeleton from pose_node reaching the model as a usable
modality, with its stamps, and the cost of each stage. The shipped checkpoint was trained on
the synthetic world, so its action labels on this corridor scene mean nothing.
"""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

from retf_ros.errors import RetfError
from retf_ros.harness.loopback import loopback_environment
from retf_ros.harness.processes import environment_for, start_session, wait_for
from retf_ros.replay.demo import LivePrinter, checkout_root, default_cache_dir, default_params_file, shipped_checkpoint

WINDOW = (480, 360)
PAN_PX_PER_S = 40.0


@dataclass(frozen=True)
class PoseDemoOptions:
    pcd: Path | None = None
    checkpoint: Path | None = None
    params_file: Path | None = None
    duration_s: float = 20.0
    rate: float = 10.0
    domain_id: int | None = None
    work_dir: Path | None = None


def default_pcd() -> Path | None:
    """five_people.pcd in ../shared/data next to the checkout, or under $RETF_SHARED_DATA."""
    candidates = []
    root = checkout_root()
    if root is not None:
        candidates.append(root.parent / "shared" / "data")
    if os.environ.get("RETF_SHARED_DATA"):
        candidates.append(Path(os.environ["RETF_SHARED_DATA"]))
    return next((c / "pcl" / "five_people.pcd" for c in candidates if (c / "pcl" / "five_people.pcd").is_file()),
                None)


def finite_joints(joints: list) -> int:
    return sum(all(math.isfinite(c) for c in joint) for joint in joints)


def run_pose_demo(options: PoseDemoOptions) -> int:
    pcd = options.pcd or default_pcd()
    if pcd is None or not Path(pcd).is_file():
        raise RetfError("no RGB-D frame for the pose demo: pass --pcd FILE (an organised x y z rgb(a) .pcd, e.g. "
                        "five_people.pcd from the Point Cloud Library's test data)")
    params_file = options.params_file or default_params_file()
    if params_file is None:
        raise RetfError("config/anticipation.yaml not found; pass --params-file")
    checkpoint = options.checkpoint or shipped_checkpoint()
    work_dir = options.work_dir or default_cache_dir() / "pose" / time.strftime("%Y%m%d-%H%M%S")
    work_dir.mkdir(parents=True, exist_ok=True)
    domain = options.domain_id if options.domain_id is not None else random.randint(60, 99)
    env = environment_for(loopback_environment(domain, work_dir / "ros_log"))
    namespace = f"/retf_pose_demo_{random.randint(0, 1 << 24):06x}"
    print(f"retf demo --pose: {pcd} as a {WINDOW[0]}x{WINDOW[1]} camera panning at {PAN_PX_PER_S:.0f} px/s, "
          f"{options.rate:g} Hz -> pose_node -> anticipation_node ({checkpoint}); DDS on loopback only "
          f"(domain {domain}); logs in {work_dir}", flush=True)
    session = start_session(env, work_dir, namespace=namespace, checkpoint=checkpoint, params_file=params_file,
                            overrides={"skeleton.layout": "mediapipe_33", "device": "cpu"},
                            camera_options=("--pcd", str(pcd), "--width", str(WINDOW[0]), "--height", str(WINDOW[1]),
                                            "--pan", str(PAN_PX_PER_S), "--rate", str(options.rate)),
                            pose_overrides={})
    printer = LivePrinter()
    try:
        wait_for(lambda: session.check_running() and session.skeletons(), 120, "the first PoseArray from pose_node")
        started, shown, next_skeleton_line = time.monotonic(), 0, 0.0
        while time.monotonic() - started < options.duration_s:
            session.check_running()
            documents = [e["doc"] for e in session.anticipations() if "doc" in e]
            for document in documents[shown:]:
                printer(document)
            shown = len(documents)
            if time.monotonic() >= next_skeleton_line:
                skeletons = session.skeletons()
                last = skeletons[-1]["joints"]
                print(f"  pose_node: {len(skeletons)} PoseArrays, last with "
                      + (f"{finite_joints(last)}/{len(last)} landmarks in 3D" if last else "nobody in view"),
                      flush=True)
                next_skeleton_line = time.monotonic() + 1.0
            time.sleep(0.1)
        for line in summary_lines(session):
            print(line, flush=True)
    finally:
        codes = session.stop()
    if any(codes.values()):
        raise RetfError(f"a demo process did not exit cleanly: {codes}; logs in {work_dir}")
    return 0


def summary_lines(session) -> list[str]:
    """What the run showed, from the probe's records and the last diagnostics of both nodes."""
    skeletons = session.skeletons()
    documents = [e["doc"] for e in session.anticipations() if "doc" in e]
    with_person = [s for s in skeletons if s["joints"]]
    lines = [f"pose_node: {len(skeletons)} PoseArrays, a person in {len(with_person)}, "
             + (f"{sum(finite_joints(s['joints']) for s in with_person) / len(with_person):.1f} of 33 landmarks in 3D "
                "on average" if with_person else "no landmark in 3D")]
    pose = (session.diagnostics("pose_node") or [{}])[-1].get("pose")
    if pose:
        values = pose["values"]
        lines.append(f"pose_node diagnostics: {pose['message']} (per frame p50 {values['process_ms.p50']} ms, "
                     f"p95 {values['process_ms.p95']} ms; frame age at publication p50 {values['age_ms.p50']} ms)")
    skeleton_ok = sum(d["modalities"].get("skeleton") == "ok" for d in documents)
    lines.append(f"anticipation_node: {len(documents)} anticipations, skeleton 'ok' in {skeleton_ok}"
                 + (f", end-to-end p50 {sorted(d['latency']['end_to_end_ms'] for d in documents)[len(documents) // 2]:.0f}"
                    " ms" if documents else ""))
    lines.append("(the demo checkpoint was trained on the synthetic world: its labels on this real scene mean "
                 "nothing; the run shows the skeleton path and its cost)")
    return lines
