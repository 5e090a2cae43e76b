"""QoS profiles from parameter strings, and the profiles the node's outputs use.

Inputs default to best effort with a short keep-last queue: a best-effort subscription accepts
both best-effort and reliable publishers, and a deep queue of camera frames only adds latency.
"""
from __future__ import annotations

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

RELIABILITIES = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
HISTORIES = {"keep_last": HistoryPolicy.KEEP_LAST, "keep_all": HistoryPolicy.KEEP_ALL}


def input_qos(reliability: str, history: str, depth: int) -> QoSProfile:
    """Profile for one input topic; the strings are the ``qos.<modality>.*`` parameter values."""
    if reliability not in RELIABILITIES:
        raise ValueError(f"reliability {reliability!r} is not one of {', '.join(RELIABILITIES)}")
    if history not in HISTORIES:
        raise ValueError(f"history {history!r} is not one of {', '.join(HISTORIES)}")
    if depth < 1:
        raise ValueError(f"queue depth must be >= 1, got {depth}")
    return QoSProfile(reliability=RELIABILITIES[reliability], history=HISTORIES[history], depth=depth)


def output_qos(depth: int = 10) -> QoSProfile:
    """Reliable keep-last: planners and recorders get every anticipation; any subscriber QoS works."""
    return QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=depth)


def sensor_publisher_qos(reliability: str = "best_effort", depth: int = 5) -> QoSProfile:
    """What a camera driver typically offers (used by the synthetic publisher)."""
    return input_qos(reliability, "keep_last", depth)
