"""RViz outputs: the anticipated actions as text at the person, and a debug image (the RGB
frame with the anticipated timeline and effective-rank bars). The node builds them only while
someone subscribes; both are stamped with the anticipation's source stamp.
"""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker, MarkerArray

from retf_ros.runtime.anticipation import Anticipation
from retf_ros.runtime.messages import array_to_image_fields

_DEFAULT_POSITION = (0.0, -0.3, 1.5)  # in front of the camera (optical frame: z forward, y down)
_BAR_HEIGHT = 10


def stamp_msg(stamp_ns: int) -> Time:
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def anticipation_text(a: Anticipation, limit: int = 3) -> str:
    lines = [f"now: {a.current_label} ({a.current_confidence:.2f})"]
    for action in a.actions[:limit]:
        lines.append(f"{action.start_s:.1f}-{action.end_s:.1f} s: {action.label} ({action.confidence:.2f})")
    return "\n".join(lines)


def anticipation_markers(a: Anticipation, skeleton: np.ndarray | None) -> MarkerArray:
    """One TEXT_VIEW_FACING marker above the person (skeleton centroid; else a fixed point)."""
    marker = Marker(ns="anticipation", id=0, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, text=anticipation_text(a))
    marker.header.stamp = stamp_msg(a.exact_stamp_ns())
    marker.header.frame_id = a.frame_id
    position = _DEFAULT_POSITION
    if skeleton is not None and np.isfinite(skeleton).all(axis=1).any():
        centre = np.nanmean(skeleton[np.isfinite(skeleton).all(axis=1)], axis=0)
        position = (float(centre[0]), float(centre[1]) - 0.5, float(centre[2]))
    marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = position
    marker.pose.orientation.w = 1.0
    marker.scale.z = 0.08
    marker.color.r = marker.color.g = marker.color.b = marker.color.a = 1.0
    marker.lifetime.sec = 2
    return MarkerArray(markers=[marker])


def _class_colour(class_id: int) -> np.ndarray:
    rng = np.random.default_rng(class_id + 7)  # a stable colour per class
    return rng.integers(60, 256, size=3).astype(np.uint8)


def debug_image(a: Anticipation, rgb: np.ndarray | None, size: tuple[int, int] = (240, 320)):
    """sensor_msgs/Image fields (rgb8) plus header: the frame (or grey), a timeline bar of the
    anticipated actions over the horizon, and one bar per erank (fused and per modality after
    the exchange, scaled to the largest)."""
    image = np.full((*size, 3), 64, np.uint8) if rgb is None else np.array(rgb, dtype=np.uint8, copy=True)
    height, width = image.shape[:2]
    timeline = image[height - _BAR_HEIGHT:, :]
    timeline[:] = 0
    for action in a.actions:
        x0 = int(width * action.start_s / a.horizon_s)
        x1 = max(x0 + 1, int(width * action.end_s / a.horizon_s))
        timeline[:, x0:x1] = _class_colour(action.class_id)
    ranks = [a.erank.fused, *a.erank.after.values()]
    finite = [r for r in ranks if r is not None]
    scale = max(finite) if finite else 1.0
    for i, value in enumerate(ranks):
        y0 = i * (_BAR_HEIGHT + 2)
        if y0 + _BAR_HEIGHT > height - _BAR_HEIGHT:
            break
        length = 0 if value is None else int((width // 3) * value / scale)
        image[y0:y0 + _BAR_HEIGHT, :length] = (255, 200, 0) if i == 0 else (0, 200, 255)
    msg = Image(**array_to_image_fields(image, "rgb8"))
    msg.header.stamp = stamp_msg(a.exact_stamp_ns())
    msg.header.frame_id = a.frame_id
    return msg


def skeleton_markers(joints: np.ndarray, bones: list[tuple[int, int]], header, colour=(0.1, 0.9, 0.3)) -> MarkerArray:
    """RViz markers of one 3D skeleton: the joints as a SPHERE_LIST, the bones between two
    present joints as a LINE_LIST (joints (J, 3) metres, NaN = missing). No joint present: one
    DELETEALL, so a person who left does not linger in RViz."""
    present = np.isfinite(joints).all(axis=1)
    if not present.any():
        return MarkerArray(markers=[Marker(header=header, ns="pose", action=Marker.DELETEALL)])
    spheres = Marker(header=header, ns="pose", id=0, type=Marker.SPHERE_LIST, action=Marker.ADD)
    spheres.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in joints[present]]
    spheres.scale.x = spheres.scale.y = spheres.scale.z = 0.05
    lines = Marker(header=header, ns="pose", id=1, type=Marker.LINE_LIST, action=Marker.ADD)
    for a, b in bones:
        if present[a] and present[b]:
            lines.points += [Point(x=float(v[0]), y=float(v[1]), z=float(v[2])) for v in (joints[a], joints[b])]
    lines.scale.x = 0.02
    for marker in (spheres, lines):
        marker.pose.orientation.w = 1.0
        marker.color.r, marker.color.g, marker.color.b = colour
        marker.color.a = 1.0
        marker.lifetime.nanosec = 500_000_000
    return MarkerArray(markers=[spheres, lines])
