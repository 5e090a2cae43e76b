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


def _block_factors(frame_hw: tuple[int, int], size: tuple[int, int]) -> tuple[int, int] | None:
    """(fh, fw) when ``size`` divides the frame (VGA -> 24x32, 48x64, 120x160, ...), else None."""
    (big_h, big_w), (h, w) = frame_hw, size
    if big_h < h or big_w < w or big_h % h or big_w % w:
        return None
    return big_h // h, big_w // w


def _block_sums(x: torch.Tensor, size: tuple[int, int], factors: tuple[int, int]) -> torch.Tensor:
    """Sums over each fh x fw block, in float32, of frames stored as they arrive (channels last,
    any integer or float dtype): (N, H, W, Ch) -> (N, h, w, Ch).

    Area averaging with an integer factor is the block mean; summing on the raw layout first
    (rows, an outer-axis reduction torch vectorises, then columns on the 1/fh as large result)
    avoids converting and transposing the whole frame, which is what made the general path
    cost milliseconds per VGA frame.
    """
    n, _, width, ch = x.shape
    (h, w), (fh, fw) = size, factors
    rows = x.reshape(n * h, fh, width * ch).sum(dim=1, dtype=torch.float32)
    columns = rows.view(n, h, w, fw, ch)
    if fw > 4:
        return columns.sum(dim=3)
    # Over a short middle axis torch's reduction is slow (VGA -> 120x160: 0.55 ms for RGB);
    # a few slice additions take a third of that.
    out = columns[:, :, :, 0].clone()
    for k in range(1, fw):
        out += columns[:, :, :, k]
    return out


def _rgb_by_interpolation(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The general path of prepare_rgb: (N, H, W, 3) uint8 -> (N, 3, h, w) float32."""
    return _resize(x.permute(0, 3, 1, 2).float().div_(255.0), size)


def prepare_rgb(frames, size: tuple[int, int]) -> torch.Tensor:
    """uint8 RGB (..., H, W, 3) -> float32 (..., 3, h, w) in [0, 1] at ``size`` = (h, w)."""
    x = _as_tensor(frames)
    if x.shape[-1] != 3:
        raise ValueError(f"RGB frames must end with 3 channels, got shape {tuple(x.shape)}")
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:])
    factors = _block_factors(tuple(x.shape[1:3]), size)
    if factors is None:
        out = _rgb_by_interpolation(x, size)
    else:
        out = _block_sums(x, size, factors).mul_(1.0 / (255.0 * factors[0] * factors[1])).permute(0, 3, 1, 2)
    return out.reshape(*lead, 3, *size)


def _depth_readings(depth: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Depth as it arrives -> (float32 readings, invalid pixels 0; metres per unit: 1e-3 for
    integer millimetres, 1 for float metres). Invalid: 0, NaN, Inf, negative."""
    if depth.dtype in (torch.uint16, torch.int32, torch.int16, torch.int64):
        readings = depth.float()  # a new tensor: never changes the caller's array
        if depth.dtype != torch.uint16:
            readings.clamp_(min=0.0)
        return readings, 1e-3
    return torch.nan_to_num(depth.float(), nan=0.0, posinf=0.0, neginf=0.0).clamp_(min=0.0), 1.0


def _validity_weight(readings: torch.Tensor) -> torch.Tensor:
    """1.0 where a reading is valid, else 0.0 (readings are >= 0). sign() gives it in one float
    pass; a bool comparison is several times slower on a VGA frame."""
    return torch.sign(readings)


def _depth_by_interpolation(metres: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The general path of prepare_depth: (N, H, W) metres (0 where invalid) -> (N, 1, h, w)
    metres, the average over valid pixels."""
    num = _resize(metres.unsqueeze(1), size)
    den = _resize(_validity_weight(metres).unsqueeze(1), size)
    return torch.where(den > 1e-6, num / den.clamp(min=1e-6), torch.zeros_like(num))


def prepare_depth(depth, size: tuple[int, int]) -> torch.Tensor:
    """Depth (..., H, W) as uint16 millimetres or float metres -> float32 (..., 1, h, w).

    Output is metres / DEPTH_SCALE_M; invalid pixels (0, NaN, Inf, negative) are 0 and are
    excluded from the downsampling average, so holes do not pull edges towards the camera.
    """
    readings, metres_per_unit = _depth_readings(_as_tensor(depth))
    lead = readings.shape[:-2]
    readings = readings.reshape(-1, *readings.shape[-2:])
    factors = _block_factors(tuple(readings.shape[1:]), size)
    if factors is None:
        out = _depth_by_interpolation(readings * metres_per_unit, size)
    else:  # invalid pixels are 0 in ``readings``: the block sum over valid pixels / their count
        total = _block_sums(readings.unsqueeze(-1), size, factors)
        count = _block_sums(_validity_weight(readings).unsqueeze(-1), size, factors)
        out = torch.where(count > 0, total / count.clamp(min=1.0), torch.zeros_like(total)).permute(0, 3, 1, 2)
        out = out * metres_per_unit
    return (out / DEPTH_SCALE_M).reshape(*lead, 1, *size)


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
