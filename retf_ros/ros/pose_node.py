"""``pose_node``: an RGB-D camera in, the person's 3D skeleton out, for anticipation_node (or any
consumer of geometry_msgs/PoseArray). An rclpy LifecycleNode.

Inputs (relative names, remap as usual): ``rgb/image_raw`` (sensor_msgs/Image) or
``rgb/image_raw/compressed`` (``rgb.compressed``), ``depth/image_raw`` (registered to the RGB
image: same size, same pixel grid) and ``rgb/camera_info`` (sensor_msgs/CameraInfo of the RGB
image; its K gives fx, fy, cx, cy; the latest one received is used).

Output ``skeleton`` (geometry_msgs/PoseArray), one per estimated RGB-D pair, with the RGB
image's header (stamp and frame_id, i.e. the camera's optical frame): the 33 landmarks in the
``mediapipe_33`` joint order (retf_ros/fusion/skeleton.py) as positions in metres, orientation
identity; a landmark without a trustworthy depth has NaN coordinates (missing, never guessed);
nobody in view gives an EMPTY PoseArray. anticipation_node reads it with
``skeleton.layout: mediapipe_33``. ``~/markers`` (MarkerArray) only while someone subscribes.

Flow as anticipation_node: callbacks convert (retf_ros.runtime.messages) and store, a worker
thread takes the NEWEST synchronised RGB + depth pair (retf_ros.runtime.sync, require_all),
estimates the 2D landmarks (retf_ros.pose.estimator) and lifts them (retf_ros.pose.lifting).
Bad input (no CameraInfo yet, depth of another size than the image, a CameraInfo of another
size, undecodable images, depth without a valid pixel, an image stamped implausibly far from the
node's clock: ``stamps.*``) drops that frame, counted per reason, logged (rate-limited) and in
/diagnostics; the node keeps serving.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import replace

import numpy as np
from geometry_msgs.msg import Pose, PoseArray
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from retf_ros.errors import RetfError
from retf_ros.pose.estimator import MediaPipePose
from retf_ros.pose.lifting import LiftConfig, PinholeIntrinsics, lift_landmarks
from retf_ros.ros.diagnostics import LatencyWindow, NodeHealth, PoseHealth, add_sync_health, pose_statuses
from retf_ros.ros.lifecycle import SUCCESS, SensorLifecycleNode, run_lifecycle_node
from retf_ros.ros.params import POSE_PARAMETERS
from retf_ros.ros.qos import output_qos
from retf_ros.ros.topics import CAMERA_INFO_TOPIC
from retf_ros.ros.visualisation import skeleton_markers, stamp_msg
from retf_ros.runtime.messages import InvalidMessage
from retf_ros.runtime.settings import sync_config

NODE_NAME = "pose_node"
PARAMS_FILE = "config/pose.yaml"
RECENT_FRAMES = 100  # detection rate and landmarks with depth are over the last this many pairs
# An RGB frame waits this long (wall time) for its depth partner before it is dropped as unmatched.
PAIR_WAIT_S = 0.2
# An input with nothing received for this long is reported "missing" in /diagnostics (s).
INPUT_MAX_AGE_S = 1.0
# The input each whole-frame drop reason is about (the key prefix in /diagnostics).
FRAME_DROP_TOPICS = {"no_camera_info": "camera_info", "camera_info_size": "camera_info", "size_mismatch": "depth"}
BONES = (("shoulder_left", "shoulder_right"), ("hip_left", "hip_right"),
         *((f"{a}_{side}", f"{b}_{side}") for side in ("left", "right") for a, b in (
             ("shoulder", "elbow"), ("elbow", "wrist"), ("wrist", "hand_tip"), ("wrist", "thumb"), ("wrist", "pinky"),
             ("shoulder", "hip"), ("hip", "knee"), ("knee", "ankle"), ("ankle", "heel"), ("heel", "foot"),
             ("ankle", "foot"), ("eye", "ear"))),
         ("nose", "eye_left"), ("nose", "eye_right"), ("mouth_left", "mouth_right"))


def intrinsics_from_camera_info(msg) -> PinholeIntrinsics:
    """sensor_msgs/CameraInfo -> PinholeIntrinsics; InvalidMessage("camera_info") when K is unusable."""
    k = [float(v) for v in msg.k]
    if len(k) != 9 or not np.isfinite(k).all() or k[0] <= 0 or k[4] <= 0 or msg.width <= 0 or msg.height <= 0:
        raise InvalidMessage("camera_info", f"CameraInfo with K {k} for {msg.width}x{msg.height} is not a "
                             "calibrated pinhole camera (fx, fy and the size must be > 0)")
    return PinholeIntrinsics(fx=k[0], fy=k[4], cx=k[2], cy=k[5], width=int(msg.width), height=int(msg.height))


def pose_array(joints: np.ndarray, header: Header) -> PoseArray:
    """(J, 3) metres (NaN = missing) -> PoseArray with identity orientations; (0, 3) -> empty."""
    msg = PoseArray(header=header)
    for x, y, z in joints.astype(float):
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = x, y, z
        msg.poses.append(pose)
    return msg


class PoseNode(SensorLifecycleNode):
    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, POSE_PARAMETERS, PARAMS_FILE, **kwargs)
        self._estimator = None
        self._lift_config: LiftConfig | None = None
        self._bones: list[tuple[int, int]] = []
        self._intrinsics: PinholeIntrinsics | None = None
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._process_ms = LatencyWindow()
        self._age_ms = LatencyWindow()
        self._frames = 0
        self._detected: deque[bool] = deque(maxlen=RECENT_FRAMES)
        self._with_depth: deque[int] = deque(maxlen=RECENT_FRAMES)
        self._frame_errors: Counter[str] = Counter()

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._apply_reporting_parameters()
        try:
            self._lift_config = LiftConfig(patch_radius=self._p("lifting.patch_radius"),
                                           min_valid_fraction=self._p("lifting.min_valid_fraction"),
                                           max_spread_m=self._p("lifting.max_spread_m"),
                                           min_visibility=self._p("lifting.min_visibility"))
            self._estimator = MediaPipePose(min_detection_confidence=self._p("estimator.min_detection_confidence"),
                                            min_tracking_confidence=self._p("estimator.min_tracking_confidence"),
                                            tracking=self._p("estimator.tracking"))
        except (RetfError, ValueError, RuntimeError) as exc:
            return self._fail("configure", str(exc))
        layout = self._estimator.layout
        self._bones = [(layout.index(a), layout.index(b)) for a, b in BONES]
        self._outputs = {"skeleton": self.create_publisher(PoseArray, "skeleton", output_qos()),
                         "markers": self.create_publisher(MarkerArray, "~/markers", output_qos())}
        self._error = ""
        self.get_logger().info(f"configured: MediaPipe pose, {layout.num_joints} landmarks ({layout.name}) on "
                               f"'skeleton'")
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._error = ""
        # An RGB image is estimated only with its depth partner (require_all).
        self._start_input(replace(sync_config(self.parameter_values()), modalities=("rgb", "depth"), reference="rgb",
                                  policy="require_all", wait_s=PAIR_WAIT_S))
        self._reset_counters()
        self._reported_drops = {}
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="pose estimation", daemon=True)
        self._worker.start()
        self._subscribe()
        return super().on_activate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_outputs()
        self._close_estimator()
        return SUCCESS

    def stop(self) -> None:
        super().stop()
        self._close_estimator()

    def _close_estimator(self) -> None:
        if self._estimator is not None:
            self._estimator.close()
            self._estimator = None

    # ------------------------------------------------------------------ input side
    def _subscribe(self) -> None:
        self._subscribe_images()
        self._inputs.append(self.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, self._on_camera_info,
                                                     self._input_qos("camera_info")))

    def _on_camera_info(self, msg) -> None:
        try:
            self._intrinsics = intrinsics_from_camera_info(msg)
        except InvalidMessage as exc:
            self._frame_errors[f"camera_info/{exc.reason}"] += 1
            self._log.warning("camera_info", f"ignored CameraInfo: {exc}")

    # ------------------------------------------------------------------ the worker
    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.02)
            self._wake.clear()
            frames = self._sync.take(time.monotonic())
            if frames is None:
                continue
            self._wake.set()  # a newer pair may already be complete
            try:
                self._estimate(frames)
            except InvalidMessage as exc:
                key = f"{FRAME_DROP_TOPICS.get(exc.reason, 'frame')}/{exc.reason}"
                self._frame_errors[key] += 1
                self._log.warning(key, f"frame stamped {frames.stamp:.3f} s dropped: {exc}")
            except Exception as exc:  # a bug must not silently stop the node: log it and go on
                self._frame_errors["frame/estimation_error"] += 1
                self._log.warning("frame/error", f"pose estimation failed on frame {frames.stamp:.3f} s: "
                                  f"{type(exc).__name__}: {exc}")

    def _estimate(self, frames) -> None:
        """One synchronised RGB + depth pair -> one PoseArray (empty when nobody is in view)."""
        started = time.perf_counter()
        rgb, depth, intrinsics = frames.rgb, frames.depth, self._intrinsics
        if intrinsics is None:
            raise InvalidMessage("no_camera_info", "no CameraInfo received yet on rgb/camera_info")
        if depth.shape != rgb.shape[:2]:
            raise InvalidMessage("size_mismatch", f"depth is {depth.shape[1]}x{depth.shape[0]}, rgb is "
                                 f"{rgb.shape[1]}x{rgb.shape[0]} (depth must be registered to rgb)")
        if (intrinsics.height, intrinsics.width) != rgb.shape[:2]:
            raise InvalidMessage("camera_info_size", f"CameraInfo is for {intrinsics.width}x{intrinsics.height}, "
                                 f"the image is {rgb.shape[1]}x{rgb.shape[0]}")
        landmarks = self._estimator.estimate(rgb)
        if landmarks is None:
            joints = np.zeros((0, 3), np.float32)
        else:
            joints = lift_landmarks(landmarks.pixels, landmarks.visibility, depth, intrinsics, self._lift_config)
        header = Header(stamp=stamp_msg(frames.exact_stamp_ns()), frame_id=frames.frame_id)
        self._outputs["skeleton"].publish(pose_array(joints, header))
        self._frames += 1
        self._detected.append(landmarks is not None)
        if landmarks is not None:
            self._with_depth.append(int(np.isfinite(joints).all(axis=1).sum()))
        self._process_ms.add(1000 * (time.perf_counter() - started))
        self._age_ms.add((self.get_clock().now().nanoseconds - frames.exact_stamp_ns()) / 1e6)
        if self._outputs["markers"].get_subscription_count() > 0:
            self._outputs["markers"].publish(skeleton_markers(joints, self._bones if len(joints) else [], header))

    # ------------------------------------------------------------------ diagnostics
    def health(self) -> tuple[NodeHealth, PoseHealth]:
        health = NodeHealth(node_name=self.get_fully_qualified_name(), lifecycle_state=self.lifecycle_state(),
                            error=self._error, device="cpu")
        estimator = self._estimator
        pose = PoseHealth(layout=estimator.layout.name if estimator else "",
                          landmarks=estimator.layout.num_joints if estimator else 0)
        sync = self._sync
        if sync is None or health.lifecycle_state != "active":
            return health, pose
        self._reported_drops = add_sync_health(health, sync, self._stamp_gate, self._frame_errors,
                                               self._reported_drops, INPUT_MAX_AGE_S,
                                               self.get_clock().now().nanoseconds)
        intrinsics = self._intrinsics
        detected, with_depth = list(self._detected), list(self._with_depth)
        pose.frames = self._frames
        pose.camera_info = f"{intrinsics.width}x{intrinsics.height}" if intrinsics else ""
        pose.detection_rate = sum(detected) / len(detected) if detected else None
        pose.landmarks_with_depth = sum(with_depth) / len(with_depth) if with_depth else None
        pose.process_ms = self._process_ms.summary()
        pose.age_ms = self._age_ms.summary()
        return health, pose

    def diagnostic_statuses(self) -> list:
        return pose_statuses(*self.health())


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``pose_node`` (``--ros-args --params-file config/pose.yaml -p name:=value``).

    Exit status 0 after SIGINT/SIGTERM, 2 when a parameter value is refused at start-up.
    """
    return run_lifecycle_node(PoseNode, NODE_NAME, argv)


if __name__ == "__main__":
    raise SystemExit(main())
