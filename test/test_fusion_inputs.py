"""retf_ros.fusion.inputs: the block-sum fast path for frames whose size is a multiple of the
model's (VGA -> 24x32, 48x64, 120x160) gives what area interpolation gives (the path every
frame took before, still taken for other sizes), checked against a float64 block-mean oracle
too; invalid depth (0, NaN, +-Inf, negative) stays out of the average."""
import numpy as np
import pytest
import torch

from retf_ros.fusion.inputs import (DEPTH_SCALE_M, _depth_by_interpolation, _rgb_by_interpolation, prepare_depth,
                                    prepare_rgb)

VGA = (480, 640)
SIZES = [(24, 32), (48, 64), (120, 160), VGA]


def _block_mean(x: np.ndarray, size, weight: np.ndarray | None = None) -> np.ndarray:
    """float64 (weighted) mean of x (H, W, ...) over each block of a (h, w) grid; 0 where the
    weight of a block is 0."""
    (big_h, big_w), (h, w) = x.shape[:2], size
    fh, fw = big_h // h, big_w // w
    weight = np.ones(x.shape[:2]) if weight is None else weight.astype(np.float64)
    wx = x.astype(np.float64) * (weight if x.ndim == 2 else weight[..., None])
    total = wx.reshape(h, fh, w, fw, *x.shape[2:]).sum(axis=(1, 3))
    count = weight.reshape(h, fh, w, fw).sum(axis=(1, 3))
    count = count if x.ndim == 2 else count[..., None]
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def _depth_frames(seed=0):
    rng = np.random.default_rng(seed)
    millimetres = rng.integers(300, 6000, VGA).astype(np.uint16)
    millimetres[rng.random(VGA) < 0.15] = 0
    millimetres[:40, :60] = 0  # whole blocks without a reading at every size
    metres = (millimetres / 1000.0).astype(np.float32)
    metres[millimetres == 0] = np.nan
    metres[100:104, 200:260] = np.inf
    metres[200:202, 300:340] = -np.inf
    metres[300:305, 10:90] = -1.5
    metres[400:402, 500:600] = 0.0
    millimetres[~(np.isfinite(metres) & (metres > 0))] = 0  # the same scene in both encodings
    return millimetres, metres


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_rgb_equals_area_interpolation_and_the_block_mean(size):
    rgb = np.random.default_rng(1).integers(0, 256, (*VGA, 3), dtype=np.uint8)
    fast = prepare_rgb(rgb, size)
    assert fast.shape == (3, *size) and fast.dtype == torch.float32
    interpolated = _rgb_by_interpolation(torch.from_numpy(rgb)[None], size)[0]
    torch.testing.assert_close(fast, interpolated, atol=1e-6, rtol=1e-6)
    oracle = torch.from_numpy(_block_mean(rgb, size) / 255.0).permute(2, 0, 1).float()
    torch.testing.assert_close(fast, oracle, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_depth_averages_only_valid_readings_in_either_encoding(size):
    millimetres, metres = _depth_frames()
    valid = np.isfinite(metres) & (metres > 0)
    oracle = torch.from_numpy(_block_mean(np.where(valid, metres, 0.0), size, valid) / DEPTH_SCALE_M).float()
    for frame, valid_pixels in ((millimetres, millimetres > 0), (metres, valid)):
        fast = prepare_depth(frame, size)
        assert fast.shape == (1, *size) and fast.dtype == torch.float32
        torch.testing.assert_close(fast[0], oracle, atol=1e-6, rtol=1e-5)
        assert (fast[0, 0, 0] == 0).all()  # a block without any reading is 0, not NaN
        readings = torch.from_numpy(np.where(valid_pixels, metres, 0.0).astype(np.float32))
        interpolated = _depth_by_interpolation(readings[None], size)[0] / DEPTH_SCALE_M
        torch.testing.assert_close(fast, interpolated, atol=1e-6, rtol=1e-5)


def test_signed_integer_depth_treats_negative_readings_as_invalid():
    millimetres, _ = _depth_frames(2)
    signed = millimetres.astype(np.int32)
    signed[::7] = -signed[::7]
    positive = np.where(signed > 0, signed, 0).astype(np.uint16)
    torch.testing.assert_close(prepare_depth(signed, (48, 64)), prepare_depth(positive, (48, 64)), atol=0, rtol=0)


@pytest.mark.parametrize("size", [(50, 70), (600, 800)], ids=["shrink_by_a_fraction", "enlarge"])
def test_sizes_that_do_not_divide_the_frame_take_area_or_bilinear_interpolation(size):
    rgb = np.random.default_rng(3).integers(0, 256, (*VGA, 3), dtype=np.uint8)
    torch.testing.assert_close(prepare_rgb(rgb, size), _rgb_by_interpolation(torch.from_numpy(rgb)[None], size)[0],
                               atol=0, rtol=0)
    millimetres, metres = _depth_frames(3)
    readings = torch.from_numpy(np.where(np.isfinite(metres) & (metres > 0), metres, 0.0).astype(np.float32))
    torch.testing.assert_close(prepare_depth(metres, size),
                               _depth_by_interpolation(readings[None], size)[0] / DEPTH_SCALE_M, atol=0, rtol=0)


def test_batches_keep_their_leading_axes_and_equal_frame_by_frame():
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (2, 3, 96, 128, 3), dtype=np.uint8)
    depth = rng.integers(0, 4000, (2, 3, 96, 128)).astype(np.uint16)
    rgb_out, depth_out = prepare_rgb(rgb, (24, 32)), prepare_depth(depth, (24, 32))
    assert rgb_out.shape == (2, 3, 3, 24, 32) and depth_out.shape == (2, 3, 1, 24, 32)
    torch.testing.assert_close(rgb_out[1, 2], prepare_rgb(rgb[1, 2], (24, 32)), atol=0, rtol=0)
    torch.testing.assert_close(depth_out[0, 1], prepare_depth(depth[0, 1], (24, 32)), atol=0, rtol=0)


def test_the_callers_frames_are_not_modified():
    millimetres, metres = _depth_frames(5)
    signed = millimetres.astype(np.int16) - 100
    copies = [a.copy() for a in (millimetres, metres, signed)]
    for frame in (millimetres, metres, signed):
        prepare_depth(frame, (24, 32))
        prepare_depth(torch.from_numpy(frame), (24, 32))
    for frame, copy in zip((millimetres, metres, signed), copies):
        np.testing.assert_array_equal(frame, copy)
