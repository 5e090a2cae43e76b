"""A synthetic RGB-D camera with a body tracker: RGB, depth, skeleton and CameraInfo topics at
a given rate and size, for tests, benchmarks and the demo. It can inject each kind of bad input
and stop / start a topic while it runs.

Run: ``python -m retf_ros.harness.synthetic_publisher --rate 30 --width 160 --height 120`` (in an
environment from retf_ros.harness.loopback). Commands, one per line on stdin:
``stop depth`` / ``start depth`` (any of TOPICS), ``bad KIND [COUNT]`` (replace the next COUNT
frames, default 1, with that bad input; kinds in BAD_KINDS), ``frozen depth`` / ``noise depth``
(publish that modality frozen, its current frame repeated, or as noise: runtime/perturb.py),
``live depth`` (back to the scene), ``quit`` (stop publishing and exit). With ``--stamps-file``
the source stamp (integer ns) of every published frame is appended there, one per line.
The scene: a person-sized block swaying in front of a wall, its skeleton moving with it; with
``--pcd FILE``, a real registered RGB-D frame (an organised PCL cloud: real people, no
skeleton topic), seen through a ``--width`` x ``--height`` window that pans across it; with
``--clip-store DIR``, the frames of one clip of a clip store (e.g. the synthetic assembly
world the demo checkpoint was trained on), in a loop, one stored frame per tick.
"""
from __future__ import annotations

import argparse
import math
import sys
import threading
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import Pose, PoseArray
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from retf_ros.data.clipstore import ClipStore
from retf_ros.data.pcd import read_rgbd
from retf_ros.fusion.skeleton import AZURE_KINECT_32, LAYOUTS, get_layout
from retf_ros.pose.lifting import PinholeIntrinsics
from retf_ros.ros.qos import sensor_publisher_qos
from retf_ros.ros.shutdown import spin_until_stopped
from retf_ros.ros.topics import CAMERA_INFO_TOPIC, INPUT_TOPICS, compressed_topic
from retf_ros.ros.visualisation import stamp_msg
from retf_ros.runtime.frames import MODALITIES
from retf_ros.runtime.messages import array_to_image_fields
from retf_ros.runtime.perturb import FAULTS, ModalityFault

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
    "nobody": "rgb of one flat grey (nobody in view; depth as usual)",
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
TOPICS = (*MODALITIES, "camera_info")

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


def nominal_intrinsics(width: int, height: int) -> PinholeIntrinsics:
    """Intrinsics of a drawn scene (not projected): a 53 degree horizontal field of view."""
    return PinholeIntrinsics(fx=float(width), fy=float(width), cx=(width - 1) / 2, cy=(height - 1) / 2,
                             width=width, height=height)


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

    def intrinsics(self, t: float) -> PinholeIntrinsics:
        return nominal_intrinsics(self.width, self.height)


class RecordedScene:
    """A real RGB-D frame (retf_ros.data.pcd) seen through a ``width`` x ``height`` window that
    pans left and right across it at ``pan_px_per_s`` (0 or a full-size window: still). The
    intrinsics are those of the window, so depth and pixels stay consistent."""

    def __init__(self, path: Path, width: int | None, height: int | None, pan_px_per_s: float):
        self.frame = read_rgbd(path)
        full_height, full_width = self.frame.depth.shape
        self.width, self.height = min(width or full_width, full_width), min(height or full_height, full_height)
        self._travel = full_width - self.width
        self._y0 = (full_height - self.height) // 2
        self._pan = pan_px_per_s

    def _x0(self, t: float) -> int:
        if self._travel == 0 or self._pan <= 0:
            return self._travel // 2
        phase = (t * self._pan) % (2 * self._travel)
        return int(phase if phase <= self._travel else 2 * self._travel - phase)

    def _window(self, t: float) -> tuple[slice, slice]:
        x0 = self._x0(t)
        return slice(self._y0, self._y0 + self.height), slice(x0, x0 + self.width)

    def rgb(self, t: float) -> np.ndarray:
        return self.frame.rgb[self._window(t)].copy()

    def depth_m(self, t: float) -> np.ndarray:
        return self.frame.depth[self._window(t)].copy()

    def intrinsics(self, t: float) -> PinholeIntrinsics:
        return self.frame.intrinsics.cropped(self._x0(t), self._y0, self.width, self.height)


class ClipScene:
    """The frames of one clip of a clip store, looped: frame ``floor(t * fps) mod T`` at time t
    (same interface as SyntheticScene; joints only in the store's layout)."""

    def __init__(self, store_dir: Path, clip_id: str | None, part: str):
        store = ClipStore(store_dir)
        ids = store.clip_ids(store.default_split, part) or store.all_clip_ids()
        self.clip = store.load(clip_id or ids[0], modalities=("rgb", "depth", "skeleton"))
        if self.clip.rgb is None or self.clip.depth is None or self.clip.skeleton is None:
            raise SystemExit(f"clip {self.clip.clip_id} of {store_dir} lacks rgb, depth or skeleton")
        self.layout = get_layout(store.skeleton_layout or "kinect_v2_25")
        self.fps = float(store.fps)
        self.height, self.width = self.clip.rgb.shape[1:3]

    def _index(self, t: float) -> int:
        return int(math.floor(t * self.fps)) % self.clip.num_frames

    def rgb(self, t: float) -> np.ndarray:
        return self.clip.rgb[self._index(t)].copy()

    def depth_m(self, t: float) -> np.ndarray:
        depth = self.clip.depth[self._index(t)].astype(np.float32) / 1000.0
        depth[depth == 0] = np.nan
        return depth

    def intrinsics(self, t: float) -> PinholeIntrinsics:
        """The clip's own camera (synthetic clips store it), else nominal intrinsics."""
        k = self.clip.intrinsics
        if k is None:
            return nominal_intrinsics(self.width, self.height)
        return PinholeIntrinsics(fx=float(k[0, 0]), fy=float(k[1, 1]), cx=float(k[0, 2]), cy=float(k[1, 2]),
                                 width=self.width, height=self.height)

    def joints(self, t: float, layout=None) -> np.ndarray:
        if layout is not None and layout.name != self.layout.name:
            raise ValueError(f"a clip scene has joints in {self.layout.name} only")
        return self.clip.skeleton[self._index(t)].copy()


class SyntheticCamera:
    """Publishes the scene on ``rgb/image_raw`` (or ``rgb/image_raw/compressed``),
    ``depth/image_raw``, ``skeleton`` and ``rgb/camera_info`` from an rclpy node, one frame per
    timer tick."""

    def __init__(self, node, options: argparse.Namespace):
        self.node, self.options = node, options
        if options.pcd:
            self.scene = RecordedScene(options.pcd, options.width, options.height, options.pan)
        elif options.clip_store:
            self.scene = ClipScene(options.clip_store, options.clip, options.clip_part)
        else:
            self.scene = SyntheticScene(options.width or 160, options.height or 120, options.layout)
        qos = sensor_publisher_qos(options.reliability)
        self.publishers = {
            "rgb": node.create_publisher(CompressedImage, compressed_topic(INPUT_TOPICS["rgb"]), qos)
            if options.compressed else node.create_publisher(Image, INPUT_TOPICS["rgb"], qos),
            "depth": node.create_publisher(Image, INPUT_TOPICS["depth"], qos),
            "skeleton": node.create_publisher(MarkerArray if options.skeleton_type == "marker_array" else PoseArray,
                                              INPUT_TOPICS["skeleton"], qos),
            "camera_info": node.create_publisher(CameraInfo, CAMERA_INFO_TOPIC, qos),
        }
        self.active = {m: m in options.modalities for m in TOPICS}
        self._bad: dict[str, int] = {}
        self._faults: dict[str, ModalityFault] = {}
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
            if words[0] in ("stop", "start") and len(words) == 2 and words[1] in TOPICS:
                self.active[words[1]] = words[0] == "start"
            elif words[0] == "bad" and len(words) in (2, 3) and words[1] in BAD_KINDS:
                self._bad[words[1]] = self._bad.get(words[1], 0) + (int(words[2]) if len(words) == 3 else 1)
            elif words[0] in FAULTS and len(words) == 2 and words[1] in MODALITIES:
                self._faults[words[1]] = ModalityFault(words[1], words[0], seed=self._frames)
            elif words[0] == "live" and len(words) == 2 and words[1] in MODALITIES:
                self._faults.pop(words[1], None)
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
        if active["camera_info"]:
            self.publishers["camera_info"].publish(camera_info_message(self.scene.intrinsics(t), header))

    def _faulty(self, modality: str, array: np.ndarray) -> np.ndarray:
        """``array`` as the modality's current fault (frozen / noise) makes it, if any."""
        with self._lock:
            fault = self._faults.get(modality)
        return array if fault is None else fault.apply(array)

    def _header(self, stamp_ns: int):
        return Header(stamp=stamp_msg(stamp_ns), frame_id=self.options.frame_id)

    def _rgb_message(self, t: float, header, bad: set[str]):
        rgb = self._faulty("rgb", self.scene.rgb(t))
        if "nobody" in bad:
            rgb[:] = 128
        if self.options.compressed:
            # optional (extra "images"): only --compressed needs it
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
        depth = self._faulty("depth", self.scene.depth_m(t)).copy()
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
        if self.options.skeleton_type == "marker_array":
            markers = []
            for j, (x, y, z) in enumerate(self.scene.joints(t, AZURE_KINECT_32)):
                marker = Marker(header=header, id=100 + j, type=Marker.SPHERE, action=Marker.ADD)
                marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = float(x), float(y), float(z)
                markers.append(marker)
            return MarkerArray(markers=markers)
        joints = self._faulty("skeleton", self.scene.joints(t))
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


def camera_info_message(intrinsics: PinholeIntrinsics, header):
    """sensor_msgs/CameraInfo of an undistorted pinhole camera."""
    k = intrinsics
    return CameraInfo(header=header, width=k.width, height=k.height, distortion_model="plumb_bob", d=[0.0] * 5,
                      k=[k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0], r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second")
    parser.add_argument("--width", type=int, default=None, help="default 160 (synthetic) or the --pcd frame's")
    parser.add_argument("--height", type=int, default=None, help="default 120 (synthetic) or the --pcd frame's")
    parser.add_argument("--pcd", type=Path, default=None,
                        help="publish this real organised RGB-D cloud (.pcd) instead of the synthetic scene")
    parser.add_argument("--pan", type=float, default=0.0,
                        help="with --pcd and a window smaller than the frame: pan speed in pixels per second")
    parser.add_argument("--rgb-encoding", default="rgb8", choices=("rgb8", "bgr8", "mono8"))
    parser.add_argument("--depth-encoding", default="16UC1", choices=("16UC1", "32FC1"))
    parser.add_argument("--row-padding", type=int, default=0, help="extra bytes per image row")
    parser.add_argument("--bigendian", action="store_true", help="depth in big-endian byte order")
    parser.add_argument("--compressed", action="store_true", help="rgb as JPEG CompressedImage")
    parser.add_argument("--layout", default="kinect_v2_25", choices=sorted(LAYOUTS))
    parser.add_argument("--skeleton-type", default="pose_array", choices=("pose_array", "marker_array"))
    parser.add_argument("--skeleton-every", type=int, default=1, help="publish the skeleton every N frames")
    parser.add_argument("--modalities", default=None, type=lambda s: tuple(m for m in s.split(",") if m),
                        help=f"topics to publish, of {','.join(TOPICS)} (default all; with --pcd all but skeleton)")
    parser.add_argument("--reliability", default="best_effort", choices=("best_effort", "reliable"))
    parser.add_argument("--frame-id", default="camera_color_optical_frame")
    parser.add_argument("--stamps-file", type=Path, default=None)
    parser.add_argument("--node-name", default="synthetic_camera")
    parser.add_argument("--clip-store", type=Path, default=None,
                        help="publish a clip of this clip store (looped) instead of the swaying block")
    parser.add_argument("--clip", default=None, help="clip id (default: the first of --clip-part)")
    parser.add_argument("--clip-part", default="test", choices=("train", "val", "test"))
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
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    options = parser.parse_args(rclpy.utilities.remove_ros_args(["prog", *argv])[1:])
    if options.modalities is None:
        options.modalities = tuple(t for t in TOPICS if not (options.pcd and t == "skeleton"))
    if options.pcd and "skeleton" in options.modalities:
        parser.error("--pcd frames have no skeleton: leave 'skeleton' out of --modalities")
    rclpy.init(args=["prog", *argv])
    node = rclpy.create_node(options.node_name)
    camera = SyntheticCamera(node, options)
    stop = threading.Event()
    threading.Thread(target=_read_commands, args=(camera, stop), daemon=True).start()
    print(f"publishing {camera.scene.width}x{camera.scene.height} at {options.rate} Hz: {', '.join(options.modalities)}",
          flush=True)
    try:
        spin_until_stopped(node, stop)
    finally:
        camera.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
