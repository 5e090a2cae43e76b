"""Training-time augmentation of samples (issue 17: small datasets), numpy / torch only.

Applied to training samples only (never to validation or `retf eval`), one draw per sample from
its own generator ``numpy.random.default_rng([seed, epoch, index, 1])``, so a sample with every
augmentation off is exactly the one drawn without this module.

- Skeleton (joints already centred on the body origin and divided by the torso length,
  fusion/skeleton.py ``normalise_skeleton``; the vertical axis is y in every frame the readers
  produce: Kinect camera space y up, the ROS optical frame y down):
  - rotation about the vertical axis by an angle uniform in +-``rotation_deg`` (the person seen
    from another side: bone lengths and heights are unchanged);
  - scale by a factor uniform in 1 +- ``scale`` (another body size);
  - joint noise: Gaussian, sd ``joint_noise`` torso lengths, on every joint the sensor delivered.
  Joints the sensor did not deliver stay 0.
- Temporal speed change (every modality, window indices only): the window is read at a playback
  speed uniform in 1 +- ``speed`` (speed 1.2 = the actions 20 % faster): windows.py
  ``stream_window`` / ``stream_future`` / ``protocol_window``.
- Random observation ratios (protocol task): alpha uniform between the smallest and largest of
  the configured ratios instead of one of them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Augmentation:
    """What training samples are augmented with; every field 0 / False = none."""

    rotation_deg: float = 0.0
    scale: float = 0.0
    joint_noise: float = 0.0
    speed: float = 0.0
    random_ratios: bool = False

    @classmethod
    def from_config(cls, config) -> "Augmentation":
        return cls(rotation_deg=config.augment_rotation_deg, scale=config.augment_scale,
                   joint_noise=config.augment_joint_noise, speed=config.augment_speed,
                   random_ratios=config.random_ratios)

    @property
    def skeleton(self) -> bool:
        return self.rotation_deg > 0 or self.scale > 0 or self.joint_noise > 0

    def draw_speed(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(1.0 - self.speed, 1.0 + self.speed)) if self.speed > 0 else 1.0

    def draw_alpha(self, rng: np.random.Generator, alphas: tuple[float, ...]) -> float | None:
        """A ratio uniform in [min(alphas), max(alphas)], or None (draw one of ``alphas``)."""
        return float(rng.uniform(min(alphas), max(alphas))) if self.random_ratios else None

    def apply_skeleton(self, joints: torch.Tensor, present: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """joints (W, J, 3) normalised, 0 where absent; present (W,) bool. Returns (W, J, 3)."""
        delivered = (present[:, None] & joints.ne(0).any(dim=-1)).unsqueeze(-1)  # (W, J, 1)
        angle = math.radians(float(rng.uniform(-self.rotation_deg, self.rotation_deg)))
        factor = float(rng.uniform(1.0 - self.scale, 1.0 + self.scale))
        out = rotate_vertical(joints, angle) * factor
        if self.joint_noise > 0:
            noise = torch.from_numpy(rng.normal(0.0, self.joint_noise, size=tuple(joints.shape)).astype(np.float32))
            out = out + noise
        return torch.where(delivered, out, torch.zeros_like(out))


def rotate_vertical(joints: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate (..., 3) points by ``angle`` radians about the y (vertical) axis."""
    c, s = math.cos(angle), math.sin(angle)
    x, y, z = joints.unbind(-1)
    return torch.stack([c * x + s * z, y, -s * x + c * z], dim=-1)


def describe(augmentation: Augmentation) -> dict:
    """JSON-ready record for the recipe (checkpoint metadata, the log line)."""
    return {"skeleton_rotation_deg": augmentation.rotation_deg, "skeleton_scale": augmentation.scale,
            "skeleton_joint_noise": augmentation.joint_noise, "speed_change": augmentation.speed,
            "random_observation_ratios": augmentation.random_ratios}
