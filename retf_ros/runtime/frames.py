"""One synchronised observation (``FrameSet``) as the runtime receives it, and its checks.

The node (from ROS messages) and the offline evaluators (from clip stores and bags) both build
FrameSets, so this is the single description of what a frame may hold. Arrays are in the
units the conversions produce; ``retf_ros.fusion.inputs`` turns them into model inputs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from retf_ros.errors import RetfError

MODALITIES = ("rgb", "depth", "skeleton")
STATES = ("ok", "stale", "missing")


class InvalidFrame(RetfError):
    """A FrameSet that cannot be used (bad stamp, wrong array shape or type). Carries the reason."""


@dataclass
class FrameSet:
    """One synchronised observation.

    ``stamp``: the SOURCE stamp in seconds (the header stamp), never the receive time.
    ``stamp_ns``: the same stamp as exact integer nanoseconds when the source has it (a ROS
    header: ``sec * 10**9 + nanosec``); float seconds cannot hold an epoch stamp to the
    nanosecond, and the published document repeats the source stamp exactly.
    ``rgb`` (H, W, 3) uint8 RGB order; ``depth`` (H, W) float32 metres, NaN where invalid
    (uint16 millimetres, 0 = invalid, as clip stores hold it, is accepted too: the shared
    preprocessing reads both the same way); ``skeleton`` (J, 3) float metres in the
    checkpoint's joint layout, NaN = missing joint.
    ``states``: modality -> "ok" | "stale" | "missing" as decided by the synchroniser; a
    modality whose array is None counts as "missing" unless ``states`` says "stale".
    """

    stamp: float
    rgb: np.ndarray | None = None
    depth: np.ndarray | None = None
    skeleton: np.ndarray | None = None
    frame_id: str = ""
    states: dict[str, str] = field(default_factory=dict)
    stamp_ns: int | None = None

    def array(self, modality: str) -> np.ndarray | None:
        if modality not in MODALITIES:
            raise InvalidFrame(f"unknown modality {modality!r} (expected one of {', '.join(MODALITIES)})")
        return getattr(self, modality)

    def state(self, modality: str) -> str:
        """The modality's state: "ok" only when its array is there and the synchroniser did not flag it."""
        declared = self.states.get(modality, "ok")
        if declared not in STATES:
            raise InvalidFrame(f"state of {modality} is {declared!r}, expected one of {', '.join(STATES)}")
        if self.array(modality) is None:
            return "stale" if declared == "stale" else "missing"
        return declared

    def usable(self, modality: str) -> bool:
        return self.state(modality) == "ok"

    def exact_stamp_ns(self) -> int:
        return self.stamp_ns if self.stamp_ns is not None else round(self.stamp * 1e9)


def check_frame(frames: FrameSet, modalities: tuple[str, ...], num_joints: int | None) -> None:
    """Raise InvalidFrame naming the problem when a usable array of ``modalities`` is malformed.

    Only the modalities the model uses are checked: a frame may carry others (ignored).
    """
    if not isinstance(frames.stamp, (int, float)) or not math.isfinite(frames.stamp):
        raise InvalidFrame(f"stamp {frames.stamp!r} is not a finite number of seconds")
    for modality in modalities:
        if not frames.usable(modality):
            continue
        array = frames.array(modality)
        if not isinstance(array, np.ndarray):
            raise InvalidFrame(f"{modality} is a {type(array).__name__}, expected a numpy array")
        if array.size == 0:
            raise InvalidFrame(f"{modality} is empty (shape {array.shape})")
        if modality == "rgb":
            if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
                raise InvalidFrame(f"rgb must be (H, W, 3) uint8, got {array.shape} {array.dtype}")
        elif modality == "depth":
            if array.ndim != 2 or array.dtype not in (np.float32, np.uint16):
                raise InvalidFrame(f"depth must be (H, W) float32 metres or uint16 mm, got {array.shape} {array.dtype}")
        elif array.ndim != 2 or array.shape[1] != 3 or not np.issubdtype(array.dtype, np.floating):
            raise InvalidFrame(f"skeleton must be (J, 3) float metres, got {array.shape} {array.dtype}")
        elif num_joints is not None and array.shape[0] != num_joints:
            raise InvalidFrame(f"skeleton has {array.shape[0]} joints, the checkpoint's layout has {num_joints}")
        elif np.isinf(array).any():   # NaN marks a missing joint; Inf is a broken tracker
            raise InvalidFrame("skeleton has infinite coordinates (use NaN for a missing joint)")

