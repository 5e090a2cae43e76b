"""The one place raw frames become model inputs. Training, offline evaluation and the node all
call these functions, so a frame is preprocessed identically wherever it comes from.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from retf_ros.fusion.skeleton import SkeletonLayout, convert_layout, get_layout, normalise_skeleton

DEPTH_SCALE_M = 5.0  # depth inputs are metres / 5 (0 = invalid), keeping typical rooms in [0, 1]


def _as_tensor(x) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else torch.as_tensor(x)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, Ch, H, W) float -> (N, Ch, h, w); area averaging when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    mode = "area" if x.shape[-2] >= size[0] and x.shape[-1] >= size[1] else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(x, size=size, mode=mode, **kwargs)


def prepare_rgb(frames, size: tuple[int, int]) -> torch.Tensor:
    """uint8 RGB (..., H, W, 3) -> float32 (..., 3, h, w) in [0, 1] at ``size`` = (h, w)."""
    x = _as_tensor(frames)
    if x.shape[-1] != 3:
        raise ValueError(f"RGB frames must end with 3 channels, got shape {tuple(x.shape)}")
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).float().div_(255.0)
    x = _resize(x, size)
    return x.reshape(*lead, 3, *size)


def prepare_depth(depth, size: tuple[int, int]) -> torch.Tensor:
    """Depth (..., H, W) as uint16 millimetres or float metres -> float32 (..., 1, h, w).

    Output is metres / DEPTH_SCALE_M; invalid pixels (0, NaN, Inf, negative) are 0 and are
    excluded from the downsampling average, so holes do not pull edges towards the camera.
    """
    d = _as_tensor(depth)
    metres = d.float() / 1000.0 if d.dtype in (torch.uint16, torch.int32, torch.int16, torch.int64) else d.float()
    valid = torch.isfinite(metres) & (metres > 0)
    metres = torch.where(valid, metres, torch.zeros_like(metres))
    lead = metres.shape[:-2]
    flat = metres.reshape(-1, 1, *metres.shape[-2:])
    weight = valid.reshape(-1, 1, *valid.shape[-2:]).float()
    num = _resize(flat * weight, size)
    den = _resize(weight, size)
    out = torch.where(den > 1e-6, num / den.clamp(min=1e-6), torch.zeros_like(num)) / DEPTH_SCALE_M
    return out.reshape(*lead, 1, *size)


def prepare_skeleton(joints, layout: str | SkeletonLayout, source_layout: str | SkeletonLayout | None = None
                     ) -> torch.Tensor:
    """Joints (..., J, 3) metres (NaN = missing) -> float32 (..., J', 3), centred and scale-normalised.

    ``layout`` is the model's joint layout; ``source_layout`` the layout the joints arrive in
    (default: the same). Joints are converted by name, missing ones become 0.
    """
    target = get_layout(layout) if isinstance(layout, str) else layout
    source = target if source_layout is None else (
        get_layout(source_layout) if isinstance(source_layout, str) else source_layout)
    x = _as_tensor(joints).float()
    if x.shape[-2:] != (source.num_joints, 3):
        raise ValueError(f"skeleton must be (..., {source.num_joints}, 3) for layout {source.name}, "
                         f"got {tuple(x.shape)}")
    return normalise_skeleton(convert_layout(x, source, target), target)
