"""Per-frame RGB + depth rendering of the worker, the part and the robot's tray, plus sensor effects.

The worker is drawn as capsules (limbs, torso) and spheres (head, hands) from the skeleton,
the part as a sphere, with OpenCV into a colour layer and a depth layer (painter's order, far
to near, one depth per half-capsule), then z-tested against the static background. The
robot's tray is a fronto-parallel rectangle at one of two distances scaled so that its image
is the same at both: it differs only in the depth image (the depth cue).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from retf_ros.data.synthetic.body import joint_index
from retf_ros.data.synthetic.scene import Background, Camera

SHIFT = 4                      # fixed-point bits for sub-pixel OpenCV drawing
SCALE = float(1 << SHIFT)
MAX_RANGE_M = 4.5              # beyond this the depth sensor reports nothing (0)

PART_RADIUS_M = 0.06           # the part (a pump housing) is drawn as a 12 cm sphere
# Part colours (RGB). Same geometry, so the depth image cannot tell them apart.
RED = np.array([205, 45, 40], dtype=np.float64)
BLUE = np.array([40, 70, 205], dtype=np.float64)


@dataclass(frozen=True)
class Palette:
    skin: tuple
    shirt: tuple
    trousers: tuple
    hair: tuple

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Palette":
        skin = rng.choice([[230, 190, 160], [200, 150, 110], [160, 110, 80], [110, 75, 55]])
        # Shirt colours avoid the saturated red/blue of the parts.
        shirt = rng.choice([[90, 110, 90], [200, 200, 190], [60, 60, 60], [150, 130, 90],
                            [110, 140, 140], [180, 160, 60]])
        trousers = rng.choice([[50, 50, 60], [90, 80, 60], [70, 75, 80]])
        hair = rng.choice([[30, 25, 20], [90, 60, 30], [170, 150, 110], [120, 120, 120]])
        jitter = lambda c: tuple(int(x) for x in np.clip(np.asarray(c) * rng.uniform(0.9, 1.1, 3), 0, 255))  # noqa: E731
        return cls(skin=jitter(skin), shirt=jitter(shirt), trousers=jitter(trousers), hair=jitter(hair))


def _primitives(palette: Palette):
    """(capsules [(a, b, radius m, colour)], spheres [(joint, radius m, colour)]) in joint names."""
    capsules = [
        ("pelvis", "spine_shoulder", 0.14, palette.shirt),
        ("spine_shoulder", "neck", 0.05, palette.skin),
        ("spine_shoulder", "shoulder_left", 0.07, palette.shirt),
        ("spine_shoulder", "shoulder_right", 0.07, palette.shirt),
        ("shoulder_left", "elbow_left", 0.05, palette.shirt),
        ("shoulder_right", "elbow_right", 0.05, palette.shirt),
        ("elbow_left", "wrist_left", 0.04, palette.skin),
        ("elbow_right", "wrist_right", 0.04, palette.skin),
        ("pelvis", "hip_left", 0.09, palette.trousers),
        ("pelvis", "hip_right", 0.09, palette.trousers),
        ("hip_left", "knee_left", 0.075, palette.trousers),
        ("hip_right", "knee_right", 0.075, palette.trousers),
        ("knee_left", "ankle_left", 0.06, palette.trousers),
        ("knee_right", "ankle_right", 0.06, palette.trousers),
        ("ankle_left", "foot_left", 0.045, (40, 40, 40)),
        ("ankle_right", "foot_right", 0.045, (40, 40, 40)),
    ]
    spheres = [("head", 0.11, palette.hair), ("hand_left", 0.045, palette.skin),
               ("hand_right", 0.045, palette.skin)]
    return capsules, spheres


@dataclass(frozen=True)
class TrayCue:
    """The robot's tray: image rectangle (pixels) and its two possible depths (metres)."""

    corners: np.ndarray   # (4, 2) pixel polygon, same for both distances
    z_near: float
    z_far: float
    colour: tuple = (150, 155, 160)


# Where the tray's image centre may fall, as fractions of the image (x, y). The spread (0.05 x
# 0.03) is well inside the tray's image (at least 0.16 x 0.17), so a fixed core of pixels -- 3 x 3
# of the model's 24 x 32 grid -- is inside the tray in every sequence: a per-pixel (linear) reader
# sees the cue without first having to find the tray (test_data_synth.py).
TRAY_CENTRE_X = (0.81, 0.86)
TRAY_CENTRE_Y = (0.21, 0.24)


def place_tray(rng: np.random.Generator, camera: Camera, background: Background) -> TrayCue:
    """Upper image corner on the worker's left (image right), away from where the worker moves."""
    w, h = camera.width, camera.height
    f = camera.K[0, 0]
    z_near = rng.uniform(1.0, 1.2)
    size_m = np.array([rng.uniform(0.23, 0.27), rng.uniform(0.19, 0.23)])
    half = size_m * f / z_near / 2
    centre = np.array([rng.uniform(*TRAY_CENTRE_X) * w, rng.uniform(*TRAY_CENTRE_Y) * h])
    corners = np.array([centre + [-half[0], -half[1]], centre + [half[0], -half[1]],
                        centre + [half[0], half[1]], centre + [-half[0], half[1]]])
    x0, y0 = np.floor(corners.min(0)).astype(int).clip(0)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    behind = float(background.depth[y0:y1 + 1, x0:x1 + 1].min())
    z_far = min(z_near + rng.uniform(0.45, 0.6), 0.9 * behind)
    return TrayCue(corners=corners, z_near=float(z_near), z_far=float(z_far))


class FrameRenderer:
    """Draws the frames of one sequence; holds the per-sequence constants.

    ``layout`` projects every primitive of every frame at once (vectorised); ``frame`` then
    only sorts and draws one frame's primitives.
    """

    def __init__(self, camera: Camera, background: Background, palette: Palette, tray: TrayCue):
        self.camera = camera
        self.background = background
        self.tray = tray
        J = joint_index()
        capsules, spheres = _primitives(palette)
        self._line_a = np.array([J[a] for a, _, _, _ in capsules])
        self._line_b = np.array([J[b] for _, b, _, _ in capsules])
        self._line_r = np.array([r for _, _, r, _ in capsules])
        self._sphere_j = np.array([J[j] for j, _, _ in spheres])
        self._sphere_r = np.array([r for _, r, _ in spheres])
        # Colours in primitive order: each capsule twice (two halves), then spheres, then the part.
        self.colours = ([tuple(float(c) for c in col) for _, _, _, col in capsules for _ in range(2)]
                        + [tuple(float(c) for c in col) for _, _, col in spheres])
        self._tray_poly = np.round(tray.corners * SCALE).astype(np.int32)
        self._tray_inner = np.round((tray.corners * 0.8 + tray.corners.mean(0) * 0.2) * SCALE).astype(np.int32)
        self._f = float(camera.K[0, 0])

    def layout(self, joints_cam: np.ndarray, part_cam: np.ndarray, part_visible: np.ndarray) -> "FrameLayout":
        """Pixel geometry of all primitives. joints_cam (T, 25, 3), part_cam (T, 3), part_visible (T,)."""
        pa, pb = joints_cam[:, self._line_a], joints_cam[:, self._line_b]
        mid = 0.5 * (pa + pb)
        # Half capsules: (T, 2L, 3) start and end points, radius per primitive.
        starts = np.concatenate([pa, mid], axis=1)
        ends = np.concatenate([mid, pb], axis=1)
        order = np.argsort(np.r_[np.arange(len(self._line_a)) * 2, np.arange(len(self._line_a)) * 2 + 1])
        starts, ends = starts[:, order], ends[:, order]
        radius_line = np.repeat(self._line_r, 2)
        z_line = 0.5 * (starts[..., 2] + ends[..., 2]) - 0.5 * radius_line
        centres = np.concatenate([joints_cam[:, self._sphere_j], part_cam[:, None]], axis=1)
        radius_sphere = np.r_[self._sphere_r, PART_RADIUS_M]
        z_sphere = centres[..., 2] - radius_sphere
        z_sphere[~part_visible, -1] = -1.0  # hidden part: skipped like anything behind the camera
        z = np.concatenate([z_line, z_sphere], axis=1)
        safe_z = np.maximum(z, 0.1)
        uv_a = self.camera.project(np.concatenate([starts, centres], axis=1))
        uv_b = np.concatenate([self.camera.project(ends), uv_a[:, len(radius_line):]], axis=1)
        size = np.concatenate([np.maximum(1, np.rint(2 * radius_line * self._f / safe_z[:, :len(radius_line)])),
                               np.maximum(1, np.rint(radius_sphere * self._f / safe_z[:, len(radius_line):] * SCALE))],
                              axis=1)
        return FrameLayout(a=np.rint(uv_a * SCALE).astype(np.int64), b=np.rint(uv_b * SCALE).astype(np.int64),
                           size=size.astype(np.int64), z=z, num_lines=len(radius_line))

    def frame(self, geometry: "FrameLayout", t: int, part_colour, tray_near: bool,
              rgb_out: np.ndarray, depth_out: np.ndarray) -> None:
        """Render frame t into rgb_out (H, W, 3) float32 and depth_out (H, W) float32 metres."""
        layer_rgb = np.zeros_like(rgb_out)
        layer_z = np.full(depth_out.shape, np.inf, dtype=np.float32)
        a, b, size, z = geometry.a[t].tolist(), geometry.b[t].tolist(), geometry.size[t].tolist(), geometry.z[t]
        colours = self.colours + [tuple(float(c) for c in part_colour)]
        for i in np.argsort(-z, kind="stable").tolist():
            depth = float(z[i])
            if depth <= 0.1:
                continue
            if i < geometry.num_lines:
                cv2.line(layer_rgb, a[i], b[i], colours[i], size[i], cv2.LINE_8, SHIFT)
                cv2.line(layer_z, a[i], b[i], depth, size[i], cv2.LINE_8, SHIFT)
            else:
                cv2.circle(layer_rgb, a[i], size[i], colours[i], -1, cv2.LINE_8, SHIFT)
                cv2.circle(layer_z, a[i], size[i], depth, -1, cv2.LINE_8, SHIFT)
        front = layer_z < self.background.depth
        np.copyto(rgb_out, self.background.rgb)
        np.copyto(depth_out, self.background.depth)
        np.copyto(rgb_out, layer_rgb, where=front[..., None])
        np.copyto(depth_out, layer_z, where=front)
        # The tray is nearer than everything behind it at either distance: drawn last.
        cv2.fillConvexPoly(rgb_out, self._tray_poly, (95.0, 100.0, 105.0), cv2.LINE_8, SHIFT)
        cv2.fillConvexPoly(rgb_out, self._tray_inner, tuple(float(c) for c in self.tray.colour), cv2.LINE_8, SHIFT)
        cv2.fillConvexPoly(depth_out, self._tray_poly, self.tray.z_near if tray_near else self.tray.z_far,
                           cv2.LINE_8, SHIFT)


@dataclass(frozen=True)
class FrameLayout:
    """Per-frame pixel geometry (fixed point, SHIFT bits) of P primitives: (T, P, 2) ends a/b,
    (T, P) line thickness or circle radius, (T, P) depth in metres; lines come first."""

    a: np.ndarray
    b: np.ndarray
    size: np.ndarray
    z: np.ndarray
    num_lines: int


def _noise_bytes(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Zero-mean, roughly Gaussian noise with unit std from raw random bytes (triangular:
    the sum of two uniform int8), float32. Several times faster than standard_normal."""
    count = int(np.prod(shape))
    raw = np.frombuffer(rng.bytes(2 * count), dtype=np.int8).reshape(2, count)
    out = raw[0].astype(np.float32)
    out += raw[1]
    out *= 1.0 / 104.5  # std of the sum of two uniform int8 values
    return out.reshape(shape)


def _uniform_bytes(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Uniform uint16 per element (compare with p * 65536 for an event of probability p)."""
    count = int(np.prod(shape))
    return np.frombuffer(rng.bytes(2 * count), dtype=np.uint16).reshape(shape)


@dataclass(frozen=True)
class SensorModel:
    rgb_noise: float = 1.5          # grey levels (std) per channel
    depth_noise_base: float = 0.0012  # metres
    depth_noise_quad: float = 0.0012  # metres per m^2 (about 8 mm at 2.5 m)
    depth_dropout: float = 0.006    # random invalid pixels
    depth_edge_dropout: float = 0.4  # probability of a hole at a depth discontinuity


class NoiseBank:
    """Unit-std noise for a sequence: one block drawn once, each chunk reads a window at a
    random offset (a view, no arithmetic), so every frame still gets a different pattern."""

    def __init__(self, rng: np.random.Generator, chunk_elements: int, factor: int = 4):
        self.rng = rng
        self.values = _noise_bytes(rng, (chunk_elements * factor,))

    def take(self, shape: tuple) -> np.ndarray:
        count = int(np.prod(shape))
        start = int(self.rng.integers(0, len(self.values) - count + 1))
        return self.values[start:start + count].reshape(shape)


def apply_rgb_effects(linear: np.ndarray, gain: np.ndarray, vignette: np.ndarray,
                      noise: NoiseBank, sensor: SensorModel) -> np.ndarray:
    """(N, H, W, 3) float32 0..255 -> uint8 with lighting gain (N, 3), vignetting and noise."""
    out = linear * gain[:, None, None, :]
    out *= vignette[None, :, :, None]
    out += noise.take(out.shape) * np.float32(sensor.rgb_noise)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def apply_depth_effects(metres: np.ndarray, noise: NoiseBank, sensor: SensorModel) -> np.ndarray:
    """(N, H, W) float32 metres -> uint16 millimetres with noise and invalid (0) pixels."""
    sigma = sensor.depth_noise_base + sensor.depth_noise_quad * metres * metres
    noisy = metres + noise.take(metres.shape) * sigma
    edge = np.zeros(metres.shape, dtype=bool)
    jump_x = np.abs(np.diff(metres, axis=2)) > 0.08
    jump_y = np.abs(np.diff(metres, axis=1)) > 0.08
    edge[:, :, 1:] |= jump_x
    edge[:, 1:, :] |= jump_y
    coin = _uniform_bytes(noise.rng, metres.shape)
    invalid = (coin < int(sensor.depth_dropout * 65536)) | (
        edge & (coin >= int((1 - sensor.depth_edge_dropout) * 65536)))
    invalid |= (noisy > MAX_RANGE_M) | (noisy < 0.4)
    mm = np.rint(noisy * 1000.0)
    mm[invalid] = 0
    return np.clip(mm, 0, 65535).astype(np.uint16)
