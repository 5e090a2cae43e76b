"""Point Cloud Library ``.pcd`` files -> registered RGB-D frames (for tests, the pose demo and
the pose benchmark, which use real recorded people).

An organised cloud (WIDTH x HEIGHT = the image, one point per pixel, NaN where the sensor had no
reading) with fields ``x y z rgb|rgba`` is exactly a registered RGB + depth pair in the camera's
optical frame: the colour of pixel (v, u) is the packed rgba, its depth is z. The intrinsics
are not stored in the file; :func:`fit_intrinsics` recovers them from the cloud's own points,
since every valid point projects to its pixel: u = fx x / z + cx, v = fy y / z + cy.

Supported: ``DATA ascii``, ``binary`` and ``binary_compressed`` (LZF, fields stored one after
the other) with COUNT 1 per field.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retf_ros.errors import DataFormatError
from retf_ros.pose.lifting import PinholeIntrinsics

_TYPES = {("F", 4): "<f4", ("F", 8): "<f8", ("U", 1): "u1", ("U", 2): "<u2", ("U", 4): "<u4",
          ("I", 1): "i1", ("I", 2): "<i2", ("I", 4): "<i4"}


@dataclass(frozen=True)
class PointCloud:
    """One organised (or unorganised, height 1) cloud: ``fields`` name -> (height, width) array."""

    width: int
    height: int
    fields: dict[str, np.ndarray]


@dataclass(frozen=True)
class RGBDFrame:
    """rgb (H, W, 3) uint8; depth (H, W) float32 metres, NaN invalid; points (H, W, 3) float32
    metres in the optical frame (x right, y down, z forward), NaN invalid."""

    rgb: np.ndarray
    depth: np.ndarray
    points: np.ndarray
    intrinsics: PinholeIntrinsics
    fit_rms_px: float = 0.0  # residual of the intrinsics fit

    def crop(self, x0: int, y0: int, width: int, height: int) -> "RGBDFrame":
        window = (slice(y0, y0 + height), slice(x0, x0 + width))
        return RGBDFrame(self.rgb[window].copy(), self.depth[window].copy(), self.points[window].copy(),
                         self.intrinsics.cropped(x0, y0, width, height), self.fit_rms_px)


def lzf_decompress(data: bytes, size: int) -> bytes:
    """LZF (liblzf, as PCL writes it) -> ``size`` bytes. Raises DataFormatError when corrupt."""
    out = bytearray()
    i, n = 0, len(data)
    try:
        while i < n:
            ctrl = data[i]
            i += 1
            if ctrl < 32:  # a literal run of ctrl + 1 bytes
                out += data[i:i + ctrl + 1]
                i += ctrl + 1
                continue
            length = ctrl >> 5
            if length == 7:
                length += data[i]
                i += 1
            start = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
            i += 1
            length += 2
            if start < 0:
                raise DataFormatError(f"LZF back-reference before the start of the output at byte {i}")
            distance = len(out) - start
            if distance >= length:
                out += out[start:start + length]
            else:  # overlapping copy: the reference repeats with period ``distance``
                pattern = out[start:]
                out += (pattern * (length // distance + 1))[:length]
    except IndexError:
        raise DataFormatError("LZF data ends in the middle of a token") from None
    if len(out) != size:
        raise DataFormatError(f"LZF data decompresses to {len(out)} bytes, the header says {size}")
    return bytes(out)


def read_pcd(path: Path | str) -> PointCloud:
    """Parse a .pcd file. Raises DataFormatError for what it does not support or cannot read."""
    path = Path(path)
    raw = path.read_bytes()
    header, offset = {}, 0
    while "DATA" not in header:
        end = raw.find(b"\n", offset)
        if end < 0:
            raise DataFormatError(f"{path}: header ends before its DATA line")
        line = raw[offset:end].decode("ascii", "replace").strip()
        offset = end + 1
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            header[key.upper()] = value.split()
    try:
        names = header["FIELDS"]
        sizes = [int(s) for s in header["SIZE"]]
        types = header["TYPE"]
        counts = [int(c) for c in header.get("COUNT", ["1"] * len(names))]
        width, height = int(header["WIDTH"][0]), int(header["HEIGHT"][0])
        encoding = header["DATA"][0]
    except (KeyError, IndexError, ValueError) as exc:
        raise DataFormatError(f"{path}: incomplete PCD header ({exc})") from None
    if any(c != 1 for c in counts) or not len(names) == len(sizes) == len(types):
        raise DataFormatError(f"{path}: only fields with COUNT 1 are supported")
    try:
        dtypes = [np.dtype(_TYPES[(t, s)]) for t, s in zip(types, sizes)]
    except KeyError as exc:
        raise DataFormatError(f"{path}: unsupported field type {exc}") from None
    points = width * height
    body = raw[offset:]
    if encoding == "binary_compressed":
        if len(body) < 8:
            raise DataFormatError(f"{path}: compressed data too short")
        compressed, size = np.frombuffer(body[:8], "<u4")
        data = lzf_decompress(body[8:8 + int(compressed)], int(size))
        fields, start = {}, 0
        for name, dtype in zip(names, dtypes):  # stored field after field
            stop = start + dtype.itemsize * points
            if stop > len(data):
                raise DataFormatError(f"{path}: decompressed data too short for field {name}")
            fields[name] = np.frombuffer(data[start:stop], dtype).reshape(height, width).copy()
            start = stop
    elif encoding == "binary":
        record = np.dtype([(name, dtype) for name, dtype in zip(names, dtypes)])
        if len(body) < record.itemsize * points:
            raise DataFormatError(f"{path}: binary data too short")
        table = np.frombuffer(body[:record.itemsize * points], record)
        fields = {name: table[name].reshape(height, width).copy() for name in names}
    elif encoding == "ascii":
        rows = np.loadtxt(body.decode("ascii").splitlines(), ndmin=2)
        if rows.shape != (points, len(names)):
            raise DataFormatError(f"{path}: ascii data is {rows.shape}, expected {(points, len(names))}")
        fields = {name: rows[:, k].astype(dtype).reshape(height, width) for k, (name, dtype)
                  in enumerate(zip(names, dtypes))}
    else:
        raise DataFormatError(f"{path}: unsupported DATA {encoding!r}")
    return PointCloud(width, height, fields)


def fit_intrinsics(points: np.ndarray) -> tuple[PinholeIntrinsics, float]:
    """Least-squares pinhole fit from an organised cloud's points (H, W, 3), NaN invalid:
    u = fx x/z + cx and v = fy y/z + cy over every valid pixel (u column, v row).
    Returns the intrinsics and the fit's RMS residual in pixels."""
    height, width = points.shape[:2]
    v, u = np.mgrid[0:height, 0:width]
    valid = np.isfinite(points).all(axis=2) & (points[..., 2] > 0)
    if valid.sum() < 3:
        raise DataFormatError("fewer than 3 valid points: cannot fit intrinsics")
    x, y, z = (points[..., k][valid].astype(np.float64) for k in range(3))
    residuals = []
    solution = []
    for ratio, pixel in ((x / z, u[valid]), (y / z, v[valid])):
        design = np.stack([ratio, np.ones_like(ratio)], axis=1)
        (focal, centre), *_ = np.linalg.lstsq(design, pixel.astype(np.float64), rcond=None)
        solution += [focal, centre]
        residuals.append(pixel - design @ np.array([focal, centre]))
    fx, cx, fy, cy = solution
    rms = float(np.sqrt(np.mean(np.concatenate(residuals) ** 2)))
    return PinholeIntrinsics(float(fx), float(fy), float(cx), float(cy), width, height), rms


def rgbd_from_cloud(cloud: PointCloud) -> RGBDFrame:
    """An organised ``x y z rgb|rgba`` cloud -> the registered RGB-D frame and its intrinsics."""
    if cloud.height < 2:
        raise DataFormatError("the cloud is not organised (height 1): it has no image layout")
    colour = cloud.fields.get("rgba", cloud.fields.get("rgb"))
    if colour is None or not {"x", "y", "z"} <= cloud.fields.keys():
        raise DataFormatError(f"the cloud needs fields x y z rgb|rgba, has {' '.join(cloud.fields)}")
    packed = np.ascontiguousarray(colour).view(np.uint32)  # PCL packs 0xAARRGGBB (rgb: float32 bits)
    rgb = np.stack([(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF], axis=-1).astype(np.uint8)
    points = np.stack([cloud.fields[k].astype(np.float32) for k in "xyz"], axis=-1)
    points[~np.isfinite(points).all(axis=2) | (points[..., 2] <= 0)] = np.nan
    depth = points[..., 2].copy()
    return RGBDFrame(rgb, depth, points, *fit_intrinsics(points))


def read_rgbd(path: Path | str) -> RGBDFrame:
    """``read_pcd`` + ``rgbd_from_cloud``."""
    return rgbd_from_cloud(read_pcd(path))
