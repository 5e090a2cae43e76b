"""PCD decoding: LZF, the three DATA encodings, colour unpacking and the intrinsics fit, on
small hand-made files and on the real Kinect frame of ../shared/data/pcl."""
from __future__ import annotations

import numpy as np
import pytest

from retf_ros.data.pcd import fit_intrinsics, lzf_decompress, read_pcd, read_rgbd, rgbd_from_cloud
from retf_ros.errors import DataFormatError

HEADER = ("# .PCD v0.7\nVERSION 0.7\nFIELDS x y z rgba\nSIZE 4 4 4 4\nTYPE F F F U\nCOUNT 1 1 1 1\n"
          "WIDTH 3\nHEIGHT 2\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 6\nDATA {}\n")
FX, FY, CX, CY = 500.0, 510.0, 1.2, 0.7


def _points() -> np.ndarray:
    """(2, 3, 3) points that project exactly to their pixels with FX, FY, CX, CY; one invalid."""
    v, u = np.mgrid[0:2, 0:3].astype(np.float64)
    z = 1.0 + 0.25 * u + 0.5 * v
    points = np.stack([(u - CX) * z / FX, (v - CY) * z / FY, z], axis=-1).astype(np.float32)
    points[1, 2] = np.nan
    return points


COLOURS = np.array([[0xFF102030, 0xFF405060, 0xFF708090], [0xFFA0B0C0, 0xFFD0E0F0, 0xFF000000]], np.uint32)


def test_lzf_literal_and_overlapping_back_reference():
    # literal "abc", then a 5-byte copy from 3 back (overlapping: the pattern repeats)
    stream = bytes([2]) + b"abc" + bytes([(3 << 5) | 0, 2])
    assert lzf_decompress(stream, 8) == b"abcabcab"
    # a long copy: length field 7 plus an extra byte
    stream = bytes([0]) + b"x" + bytes([(7 << 5) | 0, 3, 0])
    assert lzf_decompress(stream, 1 + 12) == b"x" * 13


@pytest.mark.parametrize("stream, size", [(bytes([5]) + b"ab", 6),            # literal cut short
                                          (bytes([0]) + b"a" + bytes([0x20, 9]), 4),  # reference before start
                                          (bytes([1]) + b"ab", 3)])            # size differs from header
def test_corrupt_lzf_is_a_data_format_error(stream, size):
    with pytest.raises(DataFormatError):
        lzf_decompress(stream, size)


@pytest.mark.parametrize("encoding", ["ascii", "binary"])
def test_small_cloud_decodes_to_colour_depth_and_exact_intrinsics(tmp_path, encoding):
    points = _points()
    path = tmp_path / f"small_{encoding}.pcd"
    if encoding == "ascii":
        rows = [f"{x} {y} {z} {c}" for (x, y, z), c in zip(points.reshape(-1, 3), COLOURS.reshape(-1))]
        path.write_text(HEADER.format("ascii") + "\n".join(rows) + "\n")
    else:
        record = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgba", "<u4")])
        table = np.zeros(6, record)
        for k, name in enumerate("xyz"):
            table[name] = points[..., k].reshape(-1)
        table["rgba"] = COLOURS.reshape(-1)
        path.write_bytes(HEADER.format("binary").encode() + table.tobytes())
    frame = read_rgbd(path)
    assert frame.rgb.shape == (2, 3, 3) and frame.rgb.dtype == np.uint8
    assert frame.rgb[0, 0].tolist() == [0x10, 0x20, 0x30] and frame.rgb[1, 1].tolist() == [0xD0, 0xE0, 0xF0]
    assert frame.depth.dtype == np.float32 and np.isnan(frame.depth[1, 2])
    np.testing.assert_allclose(frame.depth[0], points[0, :, 2], rtol=1e-6)
    k = frame.intrinsics
    np.testing.assert_allclose((k.fx, k.fy, k.cx, k.cy), (FX, FY, CX, CY), rtol=1e-3, atol=1e-3)
    assert (k.width, k.height) == (3, 2) and frame.fit_rms_px < 1e-3


def test_unsupported_or_broken_files_are_refused(tmp_path):
    path = tmp_path / "bad.pcd"
    path.write_text(HEADER.format("binary_lz4"))
    with pytest.raises(DataFormatError, match="unsupported DATA"):
        read_pcd(path)
    path.write_text("VERSION 0.7\nFIELDS x\n")
    with pytest.raises(DataFormatError, match="DATA"):
        read_pcd(path)
    path.write_bytes(HEADER.format("binary").encode() + b"\0" * 10)
    with pytest.raises(DataFormatError, match="too short"):
        read_pcd(path)
    unorganised = read_pcd(_write_unorganised(tmp_path))
    with pytest.raises(DataFormatError, match="not organised"):
        rgbd_from_cloud(unorganised)


def _write_unorganised(tmp_path):
    path = tmp_path / "line.pcd"
    path.write_text(HEADER.format("ascii").replace("WIDTH 3\nHEIGHT 2", "WIDTH 6\nHEIGHT 1")
                    + "\n".join("0 0 1 0" for _ in range(6)) + "\n")
    return path


def test_intrinsics_need_valid_points():
    with pytest.raises(DataFormatError, match="fewer than 3"):
        fit_intrinsics(np.full((4, 4, 3), np.nan, np.float32))


def test_real_kinect_frame_decodes_to_registered_rgbd(shared_data):
    frame = read_rgbd(shared_data / "pcl" / "five_people.pcd")
    assert frame.rgb.shape == (480, 640, 3) and frame.depth.shape == (480, 640)
    valid = np.isfinite(frame.depth)
    assert 0.75 < valid.mean() < 0.80                      # the data README: about 78 % valid pixels
    assert 1.7 < np.nanmin(frame.depth) < 1.9 and 9.6 < np.nanmax(frame.depth) < 9.9
    k = frame.intrinsics
    # the Kinect's factory intrinsics, recovered from the points alone, to a hundredth of a pixel
    np.testing.assert_allclose((k.fx, k.fy, k.cx, k.cy), (525.0, 525.0, 319.5, 239.5), atol=0.01)
    assert frame.fit_rms_px < 0.01
    assert 60 < frame.rgb.mean() < 200 and frame.rgb.std() > 20
