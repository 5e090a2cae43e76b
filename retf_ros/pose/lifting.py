"""2D landmarks + registered depth + pinhole intrinsics -> 3D joints in the camera's optical
frame (x right, y down, z forward, metres).

Each landmark's depth is the median of the valid depth pixels in a small square patch around
it: one missing or flying pixel does not move it. A landmark is MISSING (NaN), never guessed,
when the estimator is not confident it is visible (it may be occluded: the depth there belongs
to the occluder), when it lies outside the image, when too few pixels of its patch have a valid
depth, or when the patch straddles a depth edge (its valid depths spread wider than
``max_spread_m``: the median could be the background as well as the body).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PinholeIntrinsics:
    """Pinhole intrinsics in pixels (sensor_msgs/CameraInfo K: fx = K[0], cx = K[2], fy = K[4],
    cy = K[5]) of a ``width`` x ``height`` image; pixel (u, v) = (column, row) indices, the
    centre of the top-left pixel at (0, 0)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def cropped(self, x0: int, y0: int, width: int, height: int) -> "PinholeIntrinsics":
        """The intrinsics of the (x0, y0, width, height) crop of the image."""
        return PinholeIntrinsics(self.fx, self.fy, self.cx - x0, self.cy - y0, width, height)


@dataclass(frozen=True)
class LiftConfig:
    """``patch_radius``: the patch is (2r + 1)^2 pixels; ``min_valid_fraction`` of it must have
    a valid depth; ``max_spread_m``: largest interquartile range of the patch's valid depths;
    ``min_visibility``: estimator visibility below which a landmark is missing."""

    patch_radius: int = 2
    min_valid_fraction: float = 0.3
    max_spread_m: float = 0.1
    min_visibility: float = 0.5

    def __post_init__(self) -> None:
        if self.patch_radius < 0:
            raise ValueError(f"patch_radius must be >= 0, got {self.patch_radius}")
        if not 0 < self.min_valid_fraction <= 1:
            raise ValueError(f"min_valid_fraction must be in (0, 1], got {self.min_valid_fraction}")
        if not self.max_spread_m > 0:
            raise ValueError(f"max_spread_m must be > 0, got {self.max_spread_m}")
        if not 0 <= self.min_visibility <= 1:
            raise ValueError(f"min_visibility must be in [0, 1], got {self.min_visibility}")


def patch_depths(depth: np.ndarray, pixels: np.ndarray, radius: int) -> np.ndarray:
    """(J, (2r+1)^2) depths of each landmark's patch, NaN for pixels outside the image or invalid.

    depth: (H, W) float32 metres, NaN invalid; pixels: (J, 2) float (u, v)."""
    height, width = depth.shape
    offsets = np.arange(-radius, radius + 1)
    centre = np.rint(np.nan_to_num(pixels, nan=-1e9)).astype(np.int64)
    us = centre[:, 0, None, None] + offsets[None, None, :]   # (J, 1, P)
    vs = centre[:, 1, None, None] + offsets[None, :, None]   # (J, P, 1)
    inside = (us >= 0) & (us < width) & (vs >= 0) & (vs < height)
    values = depth[np.clip(vs, 0, height - 1), np.clip(us, 0, width - 1)]
    values = np.where(inside, values, np.nan)
    values[~(np.isfinite(values) & (values > 0))] = np.nan  # Inf, and zeros / negatives some drivers write
    return values.reshape(len(pixels), -1)


def landmark_depths(depth: np.ndarray, pixels: np.ndarray, config: LiftConfig) -> np.ndarray:
    """(J,) robust depth per landmark (metres), NaN where the patch cannot give one."""
    patches = patch_depths(depth, pixels, config.patch_radius)
    valid = np.isfinite(patches)
    enough = valid.sum(axis=1) >= max(1, int(np.ceil(config.min_valid_fraction * patches.shape[1])))
    out = np.full(len(pixels), np.nan, np.float32)
    if not enough.any():
        return out
    chosen = patches[enough]
    q1, median, q3 = np.nanpercentile(chosen, (25, 50, 75), axis=1)
    out[np.flatnonzero(enough)] = np.where(q3 - q1 <= config.max_spread_m, median, np.nan)
    return out


def lift_landmarks(pixels: np.ndarray, visibility: np.ndarray, depth: np.ndarray, intrinsics: PinholeIntrinsics,
                   config: LiftConfig = LiftConfig()) -> np.ndarray:
    """(J, 2) pixels (u, v) and (J,) visibility -> (J, 3) float32 camera-frame metres, NaN rows
    for missing landmarks (see the module docstring for when).

    ``depth`` (H, W) float32 metres with NaN invalid, registered to the image the landmarks
    come from and of the intrinsics' size (ValueError otherwise)."""
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(f"depth is {depth.shape[1]}x{depth.shape[0]}, the intrinsics are for "
                         f"{intrinsics.width}x{intrinsics.height}")
    pixels = np.asarray(pixels, np.float64)
    z = landmark_depths(depth, pixels, config).astype(np.float64)
    z[~(np.asarray(visibility) >= config.min_visibility)] = np.nan
    x = (pixels[:, 0] - intrinsics.cx) * z / intrinsics.fx
    y = (pixels[:, 1] - intrinsics.cy) * z / intrinsics.fy
    return np.stack([x, y, z], axis=1).astype(np.float32)
