"""ROS message <-> numpy conversions, without rclpy.

Every function is duck-typed on the message's fields, so the same code accepts messages from
rclpy (the node) and messages deserialised by ``rosbags`` (offline bag evaluation): the node
path and the offline path convert frames identically. ``data`` may be ``bytes``, an
``array.array`` (rclpy) or a numpy array (rosbags).

Conventions of the results (the units :class:`retf_ros.runtime.frames.FrameSet` expects):
colour images (H, W, 3) uint8 in RGB order; depth (H, W) float32 metres with NaN where the
sensor has no valid reading; skeletons (J, 3) float32 metres in the requested joint layout,
NaN for missing joints.

Bad input raises :class:`InvalidMessage` whose ``reason`` is a short stable code (used as a
drop reason in diagnostics) and whose message says what was wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from retf_ros.errors import DataFormatError
from retf_ros.fusion.skeleton import AZURE_KINECT_32, SkeletonLayout, get_layout, layout_source_table

# colour encoding -> channels (all 8-bit); depth encoding -> numpy dtype code (byte order apart)
COLOUR_ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1}
DEPTH_ENCODINGS = {"16UC1": "u2", "mono16": "u2", "32FC1": "f4"}
# Azure Kinect body tracking publishes one marker per joint with id = body_id * 100 + joint.
MARKER_IDS_PER_BODY = 100


class InvalidMessage(DataFormatError):
    """A message that cannot be converted. ``reason`` is a short code such as "encoding"."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def stamp_nanoseconds(msg) -> int:
    """Header stamp of ``msg`` as integer nanoseconds (exact, unlike float seconds).

    MarkerArray has no header: the stamp of its first marker is used.
    """
    header = getattr(msg, "header", None)
    if header is None:
        markers = getattr(msg, "markers", None)
        if not markers:
            raise InvalidMessage("no_stamp", "message has no header and no markers")
        header = markers[0].header
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def frame_id(msg) -> str:
    header = getattr(msg, "header", None)
    if header is None:
        markers = getattr(msg, "markers", None)
        header = markers[0].header if markers else None
    return str(header.frame_id) if header is not None else ""


IMAGE_KINDS = {"colour": COLOUR_ENCODINGS, "depth": DEPTH_ENCODINGS}


def image_to_array(msg, expect: str | None = None) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB for rgb8/bgr8/mono8, (H, W) float32 metres
    for 16UC1 (millimetres, 0 = invalid) and 32FC1 (metres; NaN, Inf and values <= 0 invalid).

    ``expect`` "colour" or "depth": the kind of image the topic carries; an encoding of the
    other kind is refused (reason ``encoding``) before its pixels are looked at.
    Honours ``step`` row padding and ``is_bigendian``. The result owns its memory.
    Raises InvalidMessage with reason ``encoding``, ``zero_size``, ``step_too_small``,
    ``data_too_short`` or ``depth_all_invalid`` (a depth image without a single valid pixel
    carries nothing the model could use, so it counts as a dropped frame).
    """
    encoding = str(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if expect is not None and encoding in {*COLOUR_ENCODINGS, *DEPTH_ENCODINGS} - set(IMAGE_KINDS[expect]):
        raise InvalidMessage("encoding", f"{encoding} is not a {expect} encoding (expected one of "
                             f"{', '.join(IMAGE_KINDS[expect])})")
    if encoding in COLOUR_ENCODINGS:
        channels, dtype = COLOUR_ENCODINGS[encoding], "u1"
    elif encoding in DEPTH_ENCODINGS:
        channels, dtype = 1, DEPTH_ENCODINGS[encoding]
    else:
        known = ", ".join([*COLOUR_ENCODINGS, *DEPTH_ENCODINGS])
        raise InvalidMessage("encoding", f"unsupported encoding {encoding!r} (supported: {known})")
    pixels = _pixel_rows(msg.data, height, width, step, channels, dtype, bool(msg.is_bigendian))
    if encoding in COLOUR_ENCODINGS:
        if encoding == "mono8":
            return np.repeat(pixels, 3, axis=2)
        if encoding == "bgr8":  # channel by channel: 4x faster than copying a reversed-stride view
            rgb = np.empty((height, width, 3), np.uint8)
            for channel in range(3):
                rgb[:, :, channel] = pixels[:, :, 2 - channel]
            return rgb
        return pixels.astype(np.uint8)  # the one copy: the result owns its memory
    return _depth_metres(pixels[:, :, 0])


def _pixel_rows(data, height: int, width: int, step: int, channels: int, dtype: str,
                bigendian: bool) -> np.ndarray:
    """Raw image bytes -> (H, W, channels) view of the message's buffer in its byte order.

    No copy here: each caller makes exactly one (RGB order, float metres, or a plain copy)."""
    if height <= 0 or width <= 0:
        raise InvalidMessage("zero_size", f"image is {width}x{height}")
    itemsize = np.dtype(dtype).itemsize
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise InvalidMessage("step_too_small", f"step {step} < width {width} x {channels * itemsize} bytes per pixel")
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size < height * step:
        raise InvalidMessage("data_too_short", f"{raw.size} data bytes < height {height} x step {step}")
    rows = raw[:height * step].reshape(height, step)[:, :row_bytes]
    typed = rows.view(np.dtype(dtype).newbyteorder(">" if bigendian else "<"))
    return typed.reshape(height, width, channels)


def _depth_metres(depth: np.ndarray) -> np.ndarray:
    """(H, W) uint16 mm or float32 m (either byte order) -> float32 metres, NaN where invalid."""
    if depth.dtype.kind == "u":
        metres = depth.astype(np.float32) / 1000.0
        metres[depth == 0] = np.nan
    else:
        metres = depth.astype(np.float32)
        metres[~np.isfinite(metres) | (metres <= 0)] = np.nan
    if not np.isfinite(metres).any():
        raise InvalidMessage("depth_all_invalid", f"no valid pixel in the {depth.shape[1]}x{depth.shape[0]} depth image")
    return metres


def compressed_image_to_array(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png; also the ``compressedDepth`` 16-bit PNG of
    image_transport) -> the same arrays as :func:`image_to_array`. Needs opencv.

    Raises InvalidMessage with reason ``zero_size`` or ``decode_failed``.
    """
    import cv2  # optional dependency (extra "images"), only needed for compressed topics

    fmt = str(msg.format)
    raw = np.frombuffer(msg.data, dtype=np.uint8)
    if "compresseddepth" in fmt.lower().replace(" ", ""):
        # image_transport's compressedDepth prefixes the PNG with a 12-byte configuration header.
        raw = raw[12:]
    if raw.size == 0:
        raise InvalidMessage("zero_size", f"compressed image ({fmt!r}) has no data")
    image = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise InvalidMessage("decode_failed", f"cannot decode compressed image of format {fmt!r}")
    if image.dtype == np.uint16 and image.ndim == 2:
        return _depth_metres(image)
    if image.dtype != np.uint8:
        raise InvalidMessage("encoding", f"compressed image decodes to {image.dtype}, expected 8-bit colour or 16-bit depth")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image[:, :, ::-1])  # OpenCV decodes to BGR


def _resolve_layout(layout: SkeletonLayout | str) -> SkeletonLayout:
    if isinstance(layout, SkeletonLayout):
        return layout
    try:
        return get_layout(layout)
    except ValueError as exc:
        raise InvalidMessage("layout", str(exc)) from None


def _finite_or_nan(points: np.ndarray) -> np.ndarray:
    points = points.astype(np.float32)
    points[~np.isfinite(points).all(axis=1)] = np.nan
    return points


def pose_array_to_skeleton(msg, layout: SkeletonLayout | str) -> np.ndarray:
    """geometry_msgs/PoseArray whose poses are the joints in ``layout`` order -> (J, 3) float32
    metres. A joint with a non-finite coordinate becomes NaN (missing).

    Raises InvalidMessage("no_body") for an empty PoseArray (what ``pose_node`` publishes when
    nobody is in view) and InvalidMessage("joint_count") when the pose count differs from the
    layout's.
    """
    layout = _resolve_layout(layout)
    poses = msg.poses
    if len(poses) == 0:
        raise InvalidMessage("no_body", "PoseArray is empty (nobody in view)")
    if len(poses) != layout.num_joints:
        raise InvalidMessage("joint_count", f"PoseArray has {len(poses)} poses, layout {layout.name} has {layout.num_joints} joints")
    points = np.array([(p.position.x, p.position.y, p.position.z) for p in poses], dtype=np.float64)
    return _finite_or_nan(points)


@dataclass(frozen=True)
class _Body:
    body_id: int
    joints: np.ndarray  # (32, 3) in the Azure Kinect order, NaN where absent


def marker_array_to_skeleton(msg, layout: SkeletonLayout | str, body_id: int | None = None) -> np.ndarray:
    """visualization_msgs/MarkerArray in the Azure Kinect body-tracking convention (marker id =
    body_id * 100 + joint, joints in the Azure Kinect order) -> (J, 3) float32 metres in
    ``layout``, joints the tracker lacks as NaN.

    ``body_id`` None picks the body nearest to the camera (smallest median joint distance),
    the person a camera-facing robot interacts with. DELETE/DELETEALL markers are ignored.
    Raises InvalidMessage("no_body") when the array holds no (matching) body and
    InvalidMessage("nonfinite_joints") when its bodies have no finite joint.
    """
    layout = _resolve_layout(layout)
    bodies = _bodies(msg)
    if body_id is not None:
        bodies = [b for b in bodies if b.body_id == body_id]
    if not bodies:
        wanted = "" if body_id is None else f" with body id {body_id}"
        raise InvalidMessage("no_body", f"MarkerArray holds no body{wanted}")
    bodies = [b for b in bodies if np.isfinite(b.joints).any()]
    if not bodies:
        raise InvalidMessage("nonfinite_joints", "every joint of the MarkerArray's bodies has NaN / Inf coordinates")
    nearest = min(bodies, key=lambda b: float(np.nanmedian(np.linalg.norm(b.joints, axis=1))))
    return convert_joints(nearest.joints, AZURE_KINECT_32, layout)


def marker_body_ids(msg) -> list[int]:
    """Ids of the bodies a MarkerArray (Azure Kinect convention) holds, ascending."""
    return [body.body_id for body in _bodies(msg)]


def convert_joints(points: np.ndarray, src: SkeletonLayout, dst: SkeletonLayout) -> np.ndarray:
    """(J_src, 3) -> (J_dst, 3) by joint name, as ``retf_ros.fusion.skeleton.convert_layout``
    (derived joints as means of their sources); joints ``src`` cannot give are NaN."""
    if src.name == dst.name:
        return points
    index, weight = layout_source_table(src, dst)
    w = weight[..., None]
    out = np.where(w > 0, points[index] * w, 0.0).sum(axis=1).astype(points.dtype)
    out[weight.sum(axis=1) == 0] = np.nan
    return out


SKELETON_MESSAGE_KINDS = ("pose_array", "marker_array")


@dataclass(frozen=True)
class SkeletonReader:
    """Skeleton messages of one kind -> (J, 3) in the model's layout (node and bag evaluation).

    ``kind``: "pose_array" (poses in ``input_layout`` order) or "marker_array" (Azure Kinect
    convention, nearest body unless ``body_id`` >= 0). Joints are matched by name when the
    input layout differs from the model's.
    """

    kind: str
    input_layout: str
    model_layout: str
    body_id: int = -1

    def __post_init__(self) -> None:
        if self.kind not in SKELETON_MESSAGE_KINDS:
            raise ValueError(f"skeleton message kind must be one of {SKELETON_MESSAGE_KINDS}, got {self.kind!r}")
        get_layout(self.input_layout)
        get_layout(self.model_layout)

    def convert(self, msg) -> np.ndarray:
        model = get_layout(self.model_layout)
        if self.kind == "marker_array":
            return marker_array_to_skeleton(msg, model, None if self.body_id < 0 else self.body_id)
        source = get_layout(self.input_layout)
        return convert_joints(pose_array_to_skeleton(msg, source), source, model)

    def convert_tracked(self, msg) -> np.ndarray:
        """:meth:`convert`, refusing a skeleton without a single finite joint (InvalidMessage
        "nonfinite_joints"): the node's policy, for which such a message is a tracker fault.
        Offline bag evaluation keeps them as recorded, to score like ``retf eval`` on the clips
        (a clip store marks an untracked body by an all-NaN frame)."""
        skeleton = self.convert(msg)
        if not np.isfinite(skeleton).any():
            raise InvalidMessage("nonfinite_joints", f"none of the {len(skeleton)} joints has finite coordinates "
                                 f"(all NaN / Inf)")
        return skeleton

    def masked_joints(self, skeleton: np.ndarray) -> int:
        """Joints of a converted (J, 3) skeleton that are missing although the input carries
        them (the tracker sent NaN / Inf, or left the marker out): masked for the model.
        Joints the input layout lacks altogether are not counted."""
        source = AZURE_KINECT_32.name if self.kind == "marker_array" else self.input_layout
        return int(np.isnan(skeleton).any(axis=1).sum()) - _unmapped_joints(source, self.model_layout)


@lru_cache(maxsize=None)
def _unmapped_joints(source: str, model: str) -> int:
    """How many joints of ``model`` the layout ``source`` can give neither directly nor derived."""
    if source == model:
        return 0
    _, weight = layout_source_table(get_layout(source), get_layout(model))
    return int((weight.sum(axis=1) == 0).sum())


def _bodies(msg) -> list[_Body]:
    add_action = 0  # visualization_msgs/Marker.ADD (MODIFY has the same value)
    joints: dict[int, np.ndarray] = {}
    for marker in msg.markers:
        if int(marker.action) != add_action or int(marker.id) < 0:
            continue
        body, joint = divmod(int(marker.id), MARKER_IDS_PER_BODY)
        if joint >= AZURE_KINECT_32.num_joints:
            continue
        table = joints.setdefault(body, np.full((AZURE_KINECT_32.num_joints, 3), np.nan, dtype=np.float32))
        p = marker.pose.position
        table[joint] = (p.x, p.y, p.z)
    return [_Body(body, _finite_or_nan(table)) for body, table in sorted(joints.items())]


def array_to_image_fields(array: np.ndarray, encoding: str, *, row_padding: int = 0,
                          bigendian: bool = False) -> dict:
    """numpy image -> the fields of a sensor_msgs/Image (without header), for publishers.

    ``array``: (H, W, 3) uint8 RGB for rgb8/bgr8, (H, W, 3) or (H, W) uint8 for mono8,
    (H, W) float metres (NaN = invalid) or uint16 millimetres for 16UC1/32FC1.
    ``row_padding`` extra bytes per row (``step`` > width * bytes per pixel), as some drivers do.
    """
    if encoding in COLOUR_ENCODINGS:
        pixels = np.asarray(array, dtype=np.uint8)
        if encoding == "mono8":
            pixels = pixels if pixels.ndim == 2 else pixels.mean(axis=2).round().astype(np.uint8)
        elif encoding == "bgr8":
            pixels = pixels[:, :, ::-1]
        dtype = np.dtype("u1")
    elif encoding in DEPTH_ENCODINGS:
        pixels = _depth_for_encoding(np.asarray(array), encoding)
        dtype = pixels.dtype.newbyteorder(">" if bigendian else "<")
    else:
        raise InvalidMessage("encoding", f"cannot write encoding {encoding!r}")
    height, width = pixels.shape[:2]
    rows = np.ascontiguousarray(pixels, dtype=dtype).reshape(height, -1).view(np.uint8)
    if row_padding:
        rows = np.concatenate([rows, np.zeros((height, row_padding), np.uint8)], axis=1)
    return {"height": height, "width": width, "encoding": encoding, "is_bigendian": int(bigendian),
            "step": rows.shape[1], "data": rows.tobytes()}


def _depth_for_encoding(depth: np.ndarray, encoding: str) -> np.ndarray:
    if DEPTH_ENCODINGS[encoding] == "u2":
        if depth.dtype == np.uint16:
            return depth
        millimetres = np.nan_to_num(depth.astype(np.float64) * 1000.0, nan=0.0, posinf=0.0, neginf=0.0)
        return np.clip(np.round(millimetres), 0, 65535).astype(np.uint16)
    if depth.dtype == np.uint16:
        metres = depth.astype(np.float32) / 1000.0
        metres[depth == 0] = np.nan
        return metres
    return depth.astype(np.float32)
