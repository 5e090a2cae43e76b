"""Skeleton joint layouts and the normalisation every skeleton goes through before the model.

Joint names are shared across layouts where two trackers mean the same body point, so a
skeleton in one layout converts to another by name (``convert_layout``). A joint the source
layout lacks but defines as a midpoint (``DERIVED_JOINTS``: the Kinect spine joints from the
hips and shoulders of an image-based estimator) is the mean of those joints; any other joint a
layout lacks becomes NaN (missing), which the model treats like a dropped joint.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

@dataclass(frozen=True)
class SkeletonLayout:
    """Joint order of one body tracker.

    ``centre``: joints whose mean is the body origin (hips / spine base).
    ``upper``: joints whose mean, with ``centre``, gives the torso length used as scale.
    """

    name: str
    joints: tuple[str, ...]
    centre: tuple[str, ...]
    upper: tuple[str, ...]

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        return self.joints.index(joint)

    def indices(self, joints: tuple[str, ...]) -> list[int]:
        return [self.index(j) for j in joints]


# NTU RGB+D (Kinect v2) order.
KINECT_V2_25 = SkeletonLayout(
    name="kinect_v2_25",
    joints=("pelvis", "spine_mid", "neck", "head",
            "shoulder_left", "elbow_left", "wrist_left", "hand_left",
            "shoulder_right", "elbow_right", "wrist_right", "hand_right",
            "hip_left", "knee_left", "ankle_left", "foot_left",
            "hip_right", "knee_right", "ankle_right", "foot_right",
            "spine_shoulder", "hand_tip_left", "thumb_left", "hand_tip_right", "thumb_right"),
    centre=("pelvis",),
    upper=("spine_shoulder",),
)

# UTKinect-Action3D (Kinect v1) order.
KINECT_V1_20 = SkeletonLayout(
    name="kinect_v1_20",
    joints=("pelvis", "spine_mid", "spine_shoulder", "head",
            "shoulder_left", "elbow_left", "wrist_left", "hand_left",
            "shoulder_right", "elbow_right", "wrist_right", "hand_right",
            "hip_left", "knee_left", "ankle_left", "foot_left",
            "hip_right", "knee_right", "ankle_right", "foot_right"),
    centre=("pelvis",),
    upper=("spine_shoulder",),
)

MEDIAPIPE_33 = SkeletonLayout(
    name="mediapipe_33",
    joints=("nose", "eye_inner_left", "eye_left", "eye_outer_left",
            "eye_inner_right", "eye_right", "eye_outer_right", "ear_left", "ear_right",
            "mouth_left", "mouth_right", "shoulder_left", "shoulder_right",
            "elbow_left", "elbow_right", "wrist_left", "wrist_right",
            "pinky_left", "pinky_right", "hand_tip_left", "hand_tip_right",
            "thumb_left", "thumb_right", "hip_left", "hip_right", "knee_left", "knee_right",
            "ankle_left", "ankle_right", "heel_left", "heel_right",
            "foot_left", "foot_right"),
    centre=("hip_left", "hip_right"),
    upper=("shoulder_left", "shoulder_right"),
)

COCO_17 = SkeletonLayout(
    name="coco_17",
    joints=("nose", "eye_left", "eye_right", "ear_left", "ear_right",
            "shoulder_left", "shoulder_right", "elbow_left", "elbow_right",
            "wrist_left", "wrist_right", "hip_left", "hip_right",
            "knee_left", "knee_right", "ankle_left", "ankle_right"),
    centre=("hip_left", "hip_right"),
    upper=("shoulder_left", "shoulder_right"),
)

# Azure Kinect Body Tracking SDK order (the MarkerArray convention: id = body * 100 + joint).
AZURE_KINECT_32 = SkeletonLayout(
    name="azure_kinect_32",
    joints=("pelvis", "spine_mid", "spine_shoulder", "neck",
            "clavicle_left", "shoulder_left", "elbow_left", "wrist_left",
            "hand_left", "hand_tip_left", "thumb_left",
            "clavicle_right", "shoulder_right", "elbow_right", "wrist_right",
            "hand_right", "hand_tip_right", "thumb_right",
            "hip_left", "knee_left", "ankle_left", "foot_left",
            "hip_right", "knee_right", "ankle_right", "foot_right",
            "head", "nose", "eye_left", "ear_left", "eye_right", "ear_right"),
    centre=("pelvis",),
    upper=("spine_shoulder",),
)

LAYOUTS: dict[str, SkeletonLayout] = {
    layout.name: layout
    for layout in (KINECT_V2_25, KINECT_V1_20, MEDIAPIPE_33, COCO_17, AZURE_KINECT_32)
}


def get_layout(name: str) -> SkeletonLayout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown skeleton layout {name!r}; known: {', '.join(sorted(LAYOUTS))}") from None


# Joints that layouts without them still determine: the mean of these joints (all present,
# else the joint is missing). Kinect's pelvis (spine base) and spine_shoulder lie between the
# hips and the shoulders, spine_mid between the two, the head centre between the ears. Without
# a pelvis, normalise_skeleton has no origin and zeroes the whole frame.
DERIVED_JOINTS: dict[str, tuple[str, ...]] = {
    "pelvis": ("hip_left", "hip_right"),
    "spine_shoulder": ("shoulder_left", "shoulder_right"),
    "spine_mid": ("hip_left", "hip_right", "shoulder_left", "shoulder_right"),
    "head": ("ear_left", "ear_right"),
}


def layout_sources(src: SkeletonLayout, dst: SkeletonLayout) -> list[tuple[int, ...]]:
    """For each joint of ``dst``, the indices in ``src`` whose mean it is: its own index when
    ``src`` has it, the DERIVED_JOINTS sources when ``src`` has all of them, else () (missing)."""
    position = {name: i for i, name in enumerate(src.joints)}
    out = []
    for name in dst.joints:
        if name in position:
            out.append((position[name],))
        elif all(part in position for part in DERIVED_JOINTS.get(name, ("",))):
            out.append(tuple(position[part] for part in DERIVED_JOINTS[name]))
        else:
            out.append(())
    return out


def layout_source_table(src: SkeletonLayout, dst: SkeletonLayout):
    """``layout_sources`` as arrays: index (J_dst, K) int64 (unused slots 0) and weight (J_dst, K)
    float32 (1 / number of sources, 0 in unused slots; a missing joint's row is all 0)."""
    sources = layout_sources(src, dst)
    width = max(1, max(len(s) for s in sources))
    index = np.zeros((len(sources), width), np.int64)
    weight = np.zeros((len(sources), width), np.float32)
    for j, parts in enumerate(sources):
        index[j, :len(parts)] = parts
        weight[j, :len(parts)] = 1.0 / len(parts) if parts else 0.0
    return index, weight


def convert_layout(joints: torch.Tensor, src: SkeletonLayout, dst: SkeletonLayout) -> torch.Tensor:
    """(..., J_src, 3) -> (..., J_dst, 3) by joint name (DERIVED_JOINTS as means); joints
    ``src`` cannot give are NaN, as are derived joints with a missing source."""
    if src.name == dst.name:
        return joints
    index, weight = layout_source_table(src, dst)
    picked = joints.index_select(-2, torch.from_numpy(index.reshape(-1)).to(joints.device))
    picked = picked.unflatten(-2, index.shape)                                  # (..., J_dst, K, 3)
    w = torch.from_numpy(weight).to(device=joints.device, dtype=joints.dtype).unsqueeze(-1)
    out = torch.where(w > 0, picked * w, torch.zeros_like(picked)).sum(dim=-2)
    missing = torch.from_numpy(weight.sum(axis=1) == 0).to(joints.device)
    return out.masked_fill(missing.view(-1, 1), float("nan"))


def normalise_skeleton(joints: torch.Tensor, layout: SkeletonLayout, eps: float = 1e-3) -> torch.Tensor:
    """Centre on the body origin and divide by the torso length.

    joints: (..., J, 3) metres, NaN for missing joints. Returns (..., J, 3) float32 with missing
    joints (and whole frames without an origin) set to 0, so the embedding never sees NaN.
    A frame whose torso length cannot be measured keeps the scale 1.
    """
    joints = joints.float()
    centre = _nanmean_joints(joints, layout.indices(layout.centre))
    upper = _nanmean_joints(joints, layout.indices(layout.upper))
    torso = torch.linalg.vector_norm(upper - centre, dim=-1, keepdim=True)
    scale = torch.where(torch.isfinite(torso) & (torso > eps), torso, torch.ones_like(torso))
    out = (joints - centre.unsqueeze(-2)) / scale.unsqueeze(-2)
    return torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def _nanmean_joints(joints: torch.Tensor, index: list[int]) -> torch.Tensor:
    """(..., J, 3) -> (..., 3): mean of the selected joints, ignoring NaN ones (NaN if none)."""
    picked = joints[..., index, :]
    return picked.nanmean(dim=-2)
