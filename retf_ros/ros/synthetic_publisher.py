"""A synthetic RGB-D camera with a body tracker: RGB, depth and skeleton topics at a given rate
and size, for tests, benchmarks and the demo. It can inject each kind of bad input and stop /
start a modality while it runs.

Run: ``python -m retf_ros.ros.synthetic_publisher --rate 30 --width 160 --height 120`` (in an
environment from retf_ros.ros.loopback). Commands, one per line on stdin:
``stop depth`` / ``start depth`` (any modality), ``bad KIND [COUNT]`` (replace the next COUNT
frames, default 1, with that bad input; kinds in BAD_KINDS), ``quit`` (stop publishing and exit). With ``--stamps-file``
the source stamp (integer ns) of every published frame is appended there, one per line.
The scene: a person-sized block swaying in front of a wall, its skeleton moving with it.
"""
from __future__ import annotations

import argparse
import math
import sys
import threading
from pathlib import Path

import numpy as np

from retf_ros.fusion.skeleton import AZURE_KINECT_32, LAYOUTS, get_layout
from retf_ros.runtime.frames import MODALITIES
from retf_ros.runtime.messages import array_to_image_fields

BAD_KINDS = {
    "encoding": "rgb with an unsupported encoding string",
    "step_too_small": "rgb whose step is smaller than width * 3",
    "zero_size": "rgb of 0 x 0 pixels",
    "short_data": "depth with fewer bytes than height * step",
    "nan_depth": "32FC1 depth with NaN and Inf pixels (a usable frame: they become invalid pixels)",
    "invalid_depth": "32FC1 depth without a single valid pixel",
    "size_mismatch": "depth of a different size than rgb",
    "joint_count": "skeleton with three joints too few",
    "stamp_backwards": "every topic stamped 0.2 s before the previous frame",
    "depth_on_rgb": "16UC1 all-zero depth on the rgb topic",
    "nan_joints": "skeleton whose joints are all NaN",
    "inf_joints": "skeleton whose joints are all +Inf",
    "some_nan_joints": "skeleton with its first five joints NaN (the rest usable)",
    # Extra frame sets, published right after the frame's good set (the stamps file lists only the good ones):
    "stamp_day_ahead": "an extra rgb + depth + skeleton set stamped now + 86 400 s",
    "stamp_zero": "an extra rgb + depth + skeleton set stamped 0",
    "stamp_5s_ago": "an extra rgb + depth + skeleton set stamped now - 5 s",
}
# Stamp of an extra frame set (kind -> the stamp in ns from the good set's stamp).
EXTRA_SET_STAMPS = {"stamp_day_ahead": lambda ns: ns + 86_400 * 10**9, "stamp_zero": lambda ns: 0,
                    "stamp_5s_ago": lambda ns: ns - 5 * 10**9}

# Standing pose in the camera's optical frame (x right, y down, z forward), metres from the
# pelvis; "_left" joints mirror to negative x for "_right".
_POSE = {
    "pelvis": (0.0, 0.0, 0.0), "spine_mid": (0.0, -0.25, 0.0), "spine_shoulder": (0.0, -0.5, 0.0),
    "neck": (0.0, -0.56, 0.0), "head": (0.0, -0.7, 0.0), "nose": (0.0, -0.68, -0.1),
    "clavicle": (0.08, -0.5, 0.0), "shoulder": (0.2, -0.5, 0.0), "elbow": (0.25, -0.25, 0.0),
    "wrist": (0.27, -0.02, 0.0), "hand": (0.28, 0.05, 0.0), "hand_tip": (0.28, 0.1, 0.0),
    "thumb": (0.25, 0.07, -0.03), "pinky": (0.3, 0.08, 0.0), "hip": (0.1, 0.0, 0.0),
    "knee": (0.1, 0.45, 0.0), "ankle": (0.1, 0.85, 0.0), "heel": (0.1, 0.88, 0.05),
    "foot": (0.1, 0.9, -0.1), "eye_inner": (0.015, -0.73, -0.08), "eye": (0.03, -0.73, -0.08),
    "eye_outer": (0.045, -0.73, -0.08), "ear": (0.08, -0.7, 0.0), "mouth": (0.02, -0.64, -0.09),
}
_WAVING = ("elbow", "wrist", "hand", "hand_tip", "thumb", "pinky")


def _joint_offset(name: str, wave: float) -> tuple[float, float, float]:
    part, _, side = name.rpartition("_") if name.endswith(("_left", "_right")) else (name, "", "")
    x, y, z = _POSE[part]
    if side == "right":
        x = -x
    if side == "left" and part in _WAVING:
        y -= wave * (0.3 if part == "elbow" else 0.6)
    return x, y, z


class SyntheticScene:
    """Frames of the synthetic scene at time t (seconds)."""

    def __init__(self, width: int, height: int, layout: str):
        self.width, self.height = width, height
        self.layout = get_layout(layout)
        yy, xx = np.mgrid[0:height, 0:width]
        self._background = np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1),
                                     np.full_like(xx, 96)], axis=-1).astype(np.uint8)

    def _sway(self, t: float) -> float:
        return 0.3 * math.sin(0.5 * t)

    def rgb(self, t: float) -> np.ndarray:
        image = self._background.copy()
        x0, x1, y0, y1 = self._person_box(t)
        phase = int(t // 4) % 3  # the "activity" changes every 4 s
        image[y0:y1, x0:x1] = ((220, 60, 60), (60, 200, 60), (60, 60, 220))[phase]
        return image

    def depth_m(self, t: float) -> np.ndarray:
        depth = np.full((self.height, self.width), 3.0, np.float32)
        x0, x1, y0, y1 = self._person_box(t)
        depth[y0:y1, x0:x1] = 2.0
        depth[: max(1, self.height // 20), : max(1, self.width // 20)] = np.nan  # a corner without readings
        return depth

    def _person_box(self, t: float) -> tuple[int, int, int, int]:
        centre = self.width * (0.5 + self._sway(t) / 2)
        half = max(1, self.width // 8)
        x0 = int(np.clip(centre - half, 0, self.width - 1))
        return x0, max(x0 + 1, int(np.clip(centre + half, 1, self.width))), self.height // 6, self.height

    def joints(self, t: float, layout=None) -> np.ndarray:
        """(J, 3) metres in ``layout`` (default: the scene's)."""
        layout = layout or self.layout
        wave = math.sin(2.0 * t) * 0.5 + 0.5
        origin = np.array([self._sway(t), 0.1, 2.0])
        return np.array([origin + _joint_offset(name, wave) for name in layout.joints], dtype=np.float32)


class SyntheticCamera:
    """Publishes the scene on ``rgb/image_raw`` (or ``rgb/image_raw/compressed``),
    ``depth/image_raw`` and ``skeleton`` from an rclpy node, one frame per timer tick."""

    def __init__(self, node, options: argparse.Namespace):
        from geometry_msgs.msg import PoseArray
        from sensor_msgs.msg import CompressedImage, Image
        from visualization_msgs.msg import MarkerArray

        from retf_ros.ros.qos import sensor_publisher_qos

        self.node, self.options = node, options
        self.scene = SyntheticScene(options.width, options.height, options.layout)
        qos = sensor_publisher_qos(options.reliability)
        self.publishers = {
            "rgb": node.create_publisher(CompressedImage, "rgb/image_raw/compressed", qos) if options.compressed
            else node.create_publisher(Image, "rgb/image_raw", qos),
            "depth": node.create_publisher(Image, "depth/image_raw", qos),
            "skeleton": node.create_publisher(MarkerArray if options.skeleton_type == "marker_array" else PoseArray,
                                              "skeleton", qos),
        }
        self.active = {m: m in options.modalities for m in MODALITIES}
        self._bad: dict[str, int] = {}
        self._lock = threading.Lock()
        self._last_stamp_ns = 0
        self._frames = 0
        self._stamps = options.stamps_file.open("a") if options.stamps_file else None
        self.timer = node.create_timer(1.0 / options.rate, self.tick)

    def close(self) -> None:
        if self._stamps is not None:
            self._stamps.close()
            self._stamps = None

    def command(self, line: str) -> str:
        """Apply one stdin command; returns a short confirmation for the log."""
        words = line.split()
        if not words:
            return ""
        with self._lock:
            if words[0] in ("stop", "start") and len(words) == 2 and words[1] in MODALITIES:
                self.active[words[1]] = words[0] == "start"
            elif words[0] == "bad" and len(words) in (2, 3) and words[1] in BAD_KINDS:
                self._bad[words[1]] = self._bad.get(words[1], 0) + (int(words[2]) if len(words) == 3 else 1)
            else:
                return f"unknown command {line!r}"
        return f"ok {line}"

    def _take_bad(self) -> set[str]:
        with self._lock:
            kinds = {k for k, n in self._bad.items() if n > 0}
            for kind in kinds:
                self._bad[kind] -= 1
            return kinds

    def tick(self) -> None:
        now_ns = self.node.get_clock().now().nanoseconds
        bad = self._take_bad()
        stamp_ns = self._last_stamp_ns - 200_000_000 if "stamp_backwards" in bad else now_ns
        if "stamp_backwards" not in bad:
            self._last_stamp_ns = stamp_ns
        t = stamp_ns / 1e9
        header = self._header(stamp_ns)
        if self._stamps is not None:  # recorded before publishing: a checker may see the output first
            self._stamps.write(f"{stamp_ns}\n")
            self._stamps.flush()
        with self._lock:
            active = dict(self.active)
        self._publish_set(t, header, bad, active)
        for kind in sorted(bad & set(EXTRA_SET_STAMPS)):
            self._publish_set(t, self._header(EXTRA_SET_STAMPS[kind](stamp_ns)), set(), active)
        self._frames += 1

    def _publish_set(self, t: float, header, bad: set[str], active: dict[str, bool]) -> None:
        if active["rgb"]:
            self.publishers["rgb"].publish(self._rgb_message(t, header, bad))
        if active["depth"]:
            self.publishers["depth"].publish(self._depth_message(t, header, bad))
        if active["skeleton"] and self._frames % self.options.skeleton_every == 0:
            self.publishers["skeleton"].publish(self._skeleton_message(t, header, bad))

    def _header(self, stamp_ns: int):
        from std_msgs.msg import Header

        from retf_ros.ros.visualisation import stamp_msg

        return Header(stamp=stamp_msg(stamp_ns), frame_id=self.options.frame_id)

    def _rgb_message(self, t: float, header, bad: set[str]):
        from sensor_msgs.msg import CompressedImage, Image

        rgb = self.scene.rgb(t)
        if self.options.compressed:
            import cv2

            _, jpeg = cv2.imencode(".jpg", rgb[:, :, ::-1])
            return CompressedImage(header=header, format="rgb8; jpeg compressed bgr8", data=jpeg.tobytes())
        if "depth_on_rgb" in bad:
            return Image(header=header, **array_to_image_fields(np.zeros(rgb.shape[:2], np.uint16), "16UC1"))
        fields = array_to_image_fields(rgb, self.options.rgb_encoding, row_padding=self.options.row_padding)
        if "encoding" in bad:
            fields["encoding"] = "yuv422"
        if "step_too_small" in bad:
            fields["step"] = fields["width"] * 3 - 1
        if "zero_size" in bad:
            fields.update(height=0, width=0, step=0, data=b"")
        return Image(header=header, **fields)

    def _depth_message(self, t: float, header, bad: set[str]):
        from sensor_msgs.msg import Image

        depth = self.scene.depth_m(t)
        encoding = self.options.depth_encoding
        if "nan_depth" in bad or "invalid_depth" in bad:
            encoding = "32FC1"
            depth[::2] = np.nan
            depth[1::4] = np.inf
            if "invalid_depth" in bad:
                depth[:] = np.nan
        if "size_mismatch" in bad:
            depth = depth[: max(1, depth.shape[0] // 2), : max(1, depth.shape[1] // 2)]
        fields = array_to_image_fields(depth, encoding, row_padding=self.options.row_padding,
                                       bigendian=self.options.bigendian)
        if "short_data" in bad:
            fields["data"] = fields["data"][: len(fields["data"]) // 2]
        return Image(header=header, **fields)

    def _skeleton_message(self, t: float, header, bad: set[str]):
        from geometry_msgs.msg import Pose, PoseArray
        from visualization_msgs.msg import Marker, MarkerArray

        if self.options.skeleton_type == "marker_array":
            markers = []
            for j, (x, y, z) in enumerate(self.scene.joints(t, AZURE_KINECT_32)):
                marker = Marker(header=header, id=100 + j, type=Marker.SPHERE, action=Marker.ADD)
                marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = float(x), float(y), float(z)
                markers.append(marker)
            return MarkerArray(markers=markers)
        joints = self.scene.joints(t)
        if "joint_count" in bad:
            joints = joints[:-3]
        if "nan_joints" in bad or "inf_joints" in bad:
            joints[:] = np.nan if "nan_joints" in bad else np.inf
        if "some_nan_joints" in bad:
            joints[:5] = np.nan
        msg = PoseArray(header=header)
        for x, y, z in joints:
            pose = Pose()
            pose.position.x, pose.position.y, pose.position.z = float(x), float(y), float(z)
            msg.poses.append(pose)
        return msg


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second")
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--rgb-encoding", default="rgb8", choices=("rgb8", "bgr8", "mono8"))
    parser.add_argument("--depth-encoding", default="16UC1", choices=("16UC1", "32FC1"))
    parser.add_argument("--row-padding", type=int, default=0, help="extra bytes per image row")
    parser.add_argument("--bigendian", action="store_true", help="depth in big-endian byte order")
    parser.add_argument("--compressed", action="store_true", help="rgb as JPEG CompressedImage")
    parser.add_argument("--layout", default="kinect_v2_25", choices=sorted(LAYOUTS))
    parser.add_argument("--skeleton-type", default="pose_array", choices=("pose_array", "marker_array"))
    parser.add_argument("--skeleton-every", type=int, default=1, help="publish the skeleton every N frames")
    parser.add_argument("--modalities", default=",".join(MODALITIES),
                        type=lambda s: tuple(m for m in s.split(",") if m))
    parser.add_argument("--reliability", default="best_effort", choices=("best_effort", "reliable"))
    parser.add_argument("--frame-id", default="camera_color_optical_frame")
    parser.add_argument("--stamps-file", type=Path, default=None)
    parser.add_argument("--node-name", default="synthetic_camera")
    return parser


def _read_commands(camera: SyntheticCamera, stop: threading.Event) -> None:
    """Apply stdin commands; end of input (no stdin) just stops listening, "quit" stops publishing."""
    for line in sys.stdin:
        if line.strip() == "quit":
            stop.set()
            return
        reply = camera.command(line)
        if reply:
            print(reply, flush=True)


def main(argv: list[str] | None = None) -> int:
    import rclpy

    from retf_ros.ros.shutdown import until_signalled

    argv = sys.argv[1:] if argv is None else argv
    options = build_parser().parse_args(rclpy.utilities.remove_ros_args(["prog", *argv])[1:])
    rclpy.init(args=["prog", *argv])
    node = rclpy.create_node(options.node_name)
    camera = SyntheticCamera(node, options)
    stop = threading.Event()
    threading.Thread(target=_read_commands, args=(camera, stop), daemon=True).start()
    print(f"publishing {options.width}x{options.height} at {options.rate} Hz: {', '.join(options.modalities)}",
          flush=True)
    try:
        with until_signalled():
            while rclpy.ok() and not stop.is_set():
                rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        camera.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
