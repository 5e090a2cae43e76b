"""The bag layout retf_ros writes and expects: topic names, message types, frame ids, metadata keys.

A bag exported from a clip store carries one message per frame and modality, all with the clip
frame's stamp as header stamp and log time, plus one ground-truth message per frame:

- ``rgb/image_raw``               sensor_msgs/msg/Image, rgb8
  (or ``rgb/image_raw/compressed`` sensor_msgs/msg/CompressedImage, jpeg or png)
- ``depth/image_raw``             sensor_msgs/msg/Image, 16UC1 millimetres (0 = no reading)
- ``skeleton``                    geometry_msgs/msg/PoseArray, one pose per joint in the clip's
                                  joint layout, position in metres, NaN position = joint missing
- ``ground_truth/action``         std_msgs/msg/String, JSON
                                  ``{"stamp": s, "stamp_ns": int, "label": str, "class_id": int, "clip": str, "frame": int,
                                  "clip_stamp": s}`` (``clip_stamp``: the frame's stamp in the clip store)

The bag's ``metadata.yaml`` custom_data records the class list, fps and joint layout under the
``retf_ros.*`` keys, so an evaluation can map labels without the clip store.
"""
from __future__ import annotations

import importlib
import struct
from dataclasses import dataclass

from retf_ros.bags.distros import distro_typestore, running_distro
from retf_ros.errors import RetfError

RGB_TOPIC = "rgb/image_raw"
RGB_COMPRESSED_TOPIC = "rgb/image_raw/compressed"
DEPTH_TOPIC = "depth/image_raw"
SKELETON_TOPIC = "skeleton"
GROUND_TRUTH_TOPIC = "ground_truth/action"
CLOCK_TOPIC = "/clock"

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
POSE_ARRAY_TYPE = "geometry_msgs/msg/PoseArray"
MARKER_ARRAY_TYPE = "visualization_msgs/msg/MarkerArray"
STRING_TYPE = "std_msgs/msg/String"
CLOCK_TYPE = "rosgraph_msgs/msg/Clock"

DEFAULT_FRAME_ID = "camera_color_optical_frame"
# Exported clips start at this epoch second so stamps look like a recording, not 0.
DEFAULT_START_EPOCH_S = 1_767_225_600  # 2026-01-01T00:00:00Z
# Silence between consecutive clips in an exported bag. Longer than a checkpoint's window
# (window / fps, a few seconds), so a streaming predictor restarts at every clip as the per-clip
# streaming evaluation does. Players may skip the silence (`retf bag play --max-idle`).
DEFAULT_CLIP_GAP_S = 10.0

META_CLASSES = "retf_ros.classes"
META_FPS = "retf_ros.fps"
META_LAYOUT = "retf_ros.skeleton_layout"
META_SOURCE = "retf_ros.source"
META_CLIPS = "retf_ros.clips"


@dataclass(frozen=True)
class ModalityTopics:
    """Which topic carries which modality in a bag (relative names, no leading slash)."""

    rgb: str = RGB_TOPIC
    depth: str = DEPTH_TOPIC
    skeleton: str = SKELETON_TOPIC
    ground_truth: str = GROUND_TRUTH_TOPIC

    def by_modality(self) -> dict[str, str]:
        return {"rgb": self.rgb, "depth": self.depth, "skeleton": self.skeleton}


def bare_topic(name: str) -> str:
    """Topic name without the leading slash: bags recorded by `ros2 bag` store absolute names."""
    return name.lstrip("/")


def typestore():
    """rosbags' message definitions of the running distro (Kilted with the PyPI wheels; CDR
    identical to rclpy's, same RIHS01 hashes)."""
    return distro_typestore(running_distro())


def message_class(msgtype: str):
    """The generated Python class of a ROS type name such as ``sensor_msgs/msg/Image``.

    Imports the message package (a ROS installation or the PyPI message wheels), not rclpy.
    """
    try:
        package, kind, name = msgtype.split("/")
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ValueError, ImportError, AttributeError) as exc:
        raise RetfError(f"message type {msgtype!r} is not available in this ROS installation ({exc})") from exc


def header_stamp_ns(raw: bytes, msgtype: str) -> int | None:
    """Header stamp (ns) read straight from CDR bytes for types that start with a std_msgs/Header.

    CDR: 4-byte encapsulation header, then the Header's int32 sec and uint32 nanosec. Returns
    None for types without a leading header (String, MarkerArray, ...).
    """
    fields = getattr(typestore().types.get(msgtype), "__dataclass_fields__", None)
    if not fields or next(iter(fields)) != "header" or len(raw) < 12:
        return None
    order = "<" if raw[1] == 1 else ">"
    sec, nanosec = struct.unpack_from(f"{order}iI", raw, 4)
    return sec * 1_000_000_000 + nanosec
