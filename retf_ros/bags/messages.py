"""numpy frames -> rosbags message objects (the inverse of retf_ros.runtime.messages).

Pixel packing reuses :func:`retf_ros.runtime.messages.array_to_image_fields`, the function the
node's publishers use, so a bag holds exactly what a camera driver following the same
conventions would publish.
"""
from __future__ import annotations

import json

import numpy as np

from retf_ros.bags.conventions import (COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, MARKER_ARRAY_TYPE, POSE_ARRAY_TYPE, STRING_TYPE,
                                       typestore)
from retf_ros.bags.distros import distro_typestore, running_distro
from retf_ros.errors import RetfError
from retf_ros.runtime.messages import MARKER_IDS_PER_BODY, array_to_image_fields

COMPRESSED_FORMATS = ("jpeg", "png")


def _types():
    return typestore().types


def header(stamp_ns: int, frame_id: str):
    types = _types()
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
                                         frame_id=frame_id)


def image_message(array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str):
    """(H, W, 3) uint8 RGB for rgb8, (H, W) uint16 mm or float32 m for 16UC1/32FC1 -> Image."""
    fields = array_to_image_fields(array, encoding)
    fields["data"] = np.frombuffer(fields["data"], dtype=np.uint8)
    return _types()[IMAGE_TYPE](header=header(stamp_ns, frame_id), **fields)


def compressed_image_message(rgb: np.ndarray, fmt: str, stamp_ns: int, frame_id: str, jpeg_quality: int = 90):
    """(H, W, 3) uint8 RGB -> CompressedImage in image_transport's format naming."""
    # optional (extra "images"): only compressed images need it
    import cv2

    if fmt not in COMPRESSED_FORMATS:
        raise RetfError(f"compressed format {fmt!r} is not one of {', '.join(COMPRESSED_FORMATS)}")
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if fmt == "jpeg" else []
    ok, encoded = cv2.imencode(f".{'jpg' if fmt == 'jpeg' else 'png'}", np.ascontiguousarray(rgb[:, :, ::-1]), params)
    if not ok:
        raise RetfError(f"opencv could not encode a {rgb.shape} image as {fmt}")
    return _types()[COMPRESSED_IMAGE_TYPE](header=header(stamp_ns, frame_id), format=f"rgb8; {fmt} compressed bgr8",
                                           data=np.asarray(encoded, dtype=np.uint8).reshape(-1))


def skeleton_message(joints: np.ndarray, stamp_ns: int, frame_id: str):
    """(J, 3) metres (NaN = missing joint) -> PoseArray, one pose per joint, identity orientation."""
    types = _types()
    point, quaternion, pose = (types["geometry_msgs/msg/Point"], types["geometry_msgs/msg/Quaternion"],
                               types["geometry_msgs/msg/Pose"])
    poses = [pose(position=point(x=float(x), y=float(y), z=float(z)),
                  orientation=quaternion(x=0.0, y=0.0, z=0.0, w=1.0))
             for x, y, z in np.asarray(joints, dtype=np.float64)]
    return types[POSE_ARRAY_TYPE](header=header(stamp_ns, frame_id), poses=poses)


def marker_array_message(bodies: dict[int, np.ndarray], stamp_ns: int, frame_id: str, distro: str | None = None):
    """Bodies {body id: (32, 3) metres in the Azure Kinect order} -> MarkerArray in the Azure Kinect
    body-tracking convention (one SPHERE per joint, marker id = body id * 100 + joint; what
    :func:`retf_ros.runtime.messages.marker_array_to_skeleton` reads), in ``distro``'s definition
    of Marker (default: the running distro's; fields a distro added stay at their defaults)."""
    # rosbags/mcap: optional (extra "bags"), only needed where bags are read or written
    from rosbags.convert.converter import default_message

    store = distro_typestore(distro or running_distro())
    sphere = 2  # visualization_msgs/Marker.SPHERE
    markers = []
    for body, joints in sorted(bodies.items()):
        for joint, (x, y, z) in enumerate(np.asarray(joints, dtype=np.float64)):
            marker = default_message(store, "visualization_msgs/msg/Marker")
            marker.header = header(stamp_ns, frame_id)
            marker.ns, marker.id, marker.type, marker.action = "body_tracking", body * MARKER_IDS_PER_BODY + joint, sphere, 0
            marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = float(x), float(y), float(z)
            marker.pose.orientation.w = 1.0
            marker.scale.x = marker.scale.y = marker.scale.z = 0.05
            marker.color.a = 1.0
            markers.append(marker)
    return store.types[MARKER_ARRAY_TYPE](markers=markers)


def ground_truth_message(stamp_ns: int, label: str, class_id: int, clip: str, frame: int, clip_stamp: float):
    """The per-frame ground-truth String: JSON {stamp, stamp_ns, label, class_id, clip, frame, clip_stamp}.

    ``stamp`` (float seconds) is for people and other tools; ``stamp_ns`` is exact and equals
    the header stamp of the frame's images (float seconds cannot hold an epoch stamp exactly);
    ``clip_stamp`` is the frame's stamp in the clip store (seconds), so scores computed on the
    bag use the very numbers an evaluation of the clips uses.
    """
    document = {"stamp": stamp_ns / 1e9, "stamp_ns": int(stamp_ns), "label": label, "class_id": int(class_id),
                "clip": clip, "frame": int(frame), "clip_stamp": float(clip_stamp)}
    return _types()[STRING_TYPE](data=json.dumps(document))
