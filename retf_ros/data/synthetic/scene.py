"""Camera and the static workbench scene, ray-cast once per sequence into RGB + depth layers.

The camera uses the ROS optical frame (x right, y down, z forward); depth images hold the
optical z in metres before quantisation. The static scene (floor, back wall, bench, supply
tray, fixture, output bin) is intersected analytically per pixel, so RGB and depth of the
background come from the same geometry.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retf_ros.data.synthetic.body import Workbench

UP = np.array([0.0, 0.0, 1.0])
FAR = 20.0  # metres assigned to rays that hit nothing (never happens with the back wall)


@dataclass(frozen=True)
class Camera:
    """Pinhole camera. ``rotation`` maps world vectors to the optical frame (rows: x, y, z axes)."""

    K: np.ndarray
    rotation: np.ndarray
    centre: np.ndarray
    width: int
    height: int

    @classmethod
    def look_at(cls, centre, target, hfov_deg: float, width: int, height: int,
                principal_offset=(0.0, 0.0)) -> "Camera":
        forward = np.asarray(target, float) - np.asarray(centre, float)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, UP)
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        f = (width / 2.0) / np.tan(np.radians(hfov_deg) / 2.0)
        K = np.array([[f, 0.0, width / 2.0 + principal_offset[0]],
                      [0.0, f, height / 2.0 + principal_offset[1]],
                      [0.0, 0.0, 1.0]])
        return cls(K=K, rotation=np.stack([right, down, forward]), centre=np.asarray(centre, float),
                   width=width, height=height)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World (..., 3) -> optical frame (..., 3)."""
        return (points - self.centre) @ self.rotation.T

    def project(self, cam_points: np.ndarray) -> np.ndarray:
        """Optical frame (..., 3) -> pixel (..., 2); points must have z > 0."""
        z = np.maximum(cam_points[..., 2:3], 1e-6)
        uv = cam_points[..., :2] / z
        return uv * np.array([self.K[0, 0], self.K[1, 1]]) + self.K[:2, 2]

    def pixel_rays(self) -> tuple[np.ndarray, np.ndarray]:
        """World-frame ray directions (H, W, 3) through pixel centres and their optical z per unit length."""
        v, u = np.mgrid[0:self.height, 0:self.width].astype(np.float64) + 0.5
        x = (u - self.K[0, 2]) / self.K[0, 0]
        y = (v - self.K[1, 2]) / self.K[1, 1]
        cam = np.stack([x, y, np.ones_like(x)], axis=-1)
        cam /= np.linalg.norm(cam, axis=-1, keepdims=True)
        return cam @ self.rotation, cam[..., 2]


@dataclass(frozen=True)
class Box:
    lo: np.ndarray
    hi: np.ndarray
    colour: np.ndarray  # RGB 0..255
    texture: str        # "wood", "plastic", "metal"


@dataclass(frozen=True)
class Background:
    rgb: np.ndarray      # (H, W, 3) float32 0..255, before lighting
    depth: np.ndarray    # (H, W) float32 optical z in metres


def sample_camera(rng: np.random.Generator, width: int, height: int) -> Camera:
    """The robot's camera across the bench, looking at the worker; pose varies per sequence."""
    azimuth = np.radians(rng.uniform(-28, 28))
    distance = rng.uniform(2.2, 2.8)
    cam_height = rng.uniform(1.45, 1.95)
    centre = np.array([distance * np.sin(azimuth), distance * np.cos(azimuth), cam_height])
    target = np.array([rng.uniform(-0.08, 0.08), rng.uniform(0.15, 0.35), rng.uniform(1.0, 1.2)])
    return Camera.look_at(centre, target, hfov_deg=rng.uniform(56, 66), width=width, height=height,
                          principal_offset=rng.uniform(-0.02, 0.02, size=2) * np.array([width, height]))


def scene_boxes(rng: np.random.Generator, bench: Workbench) -> list[Box]:
    st = bench.stations
    top = bench.height
    wood = np.array([150, 110, 70]) * rng.uniform(0.8, 1.15, size=3)

    def on_top(centre, size, colour, texture):
        lo = np.array([centre[0] - size[0] / 2, centre[1] - size[1] / 2, top])
        return Box(lo, lo + np.array(size), np.asarray(colour, float), texture)

    grey = rng.uniform(90, 150)
    return [
        Box(np.array([-0.95, bench.front_y, 0.0]), np.array([0.95, bench.back_y, top]), wood, "wood"),
        on_top(st["supply"], (0.22, 0.18, 0.02), (70, 140, 80), "plastic"),          # green tray
        on_top(st["fixture"], (0.12, 0.12, 0.045), (grey, grey, grey + 10), "metal"),
        on_top(st["bin"], (0.20, 0.16, 0.08), (200, 170, 40), "plastic"),           # yellow bin
    ]


def _wave_texture(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, scale: float, n: int = 4) -> np.ndarray:
    """Band-limited pseudo-random texture in [-1, 1] from a few oriented sinusoids."""
    out = np.zeros_like(u)
    for _ in range(n):
        angle = rng.uniform(0, np.pi)
        freq = rng.uniform(0.5, 2.0) * scale
        out += np.sin(freq * (np.cos(angle) * u + np.sin(angle) * v) + rng.uniform(0, 2 * np.pi))
    return out / n


def render_background(rng: np.random.Generator, camera: Camera, boxes: list[Box]) -> Background:
    # Rays parallel to a plane give inf/NaN hit points; those pixels are never selected.
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return _render_background(rng, camera, boxes)


def _render_background(rng: np.random.Generator, camera: Camera, boxes: list[Box]) -> Background:
    rays, z_per_t = camera.pixel_rays()
    origin = camera.centre
    h, w = rays.shape[:2]
    t_best = np.full((h, w), FAR)
    colour = np.zeros((h, w, 3))
    light = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])

    # Floor (z = 0): grey tiles with grout lines.
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(rays[..., 2] < -1e-6, -origin[2] / rays[..., 2], np.inf)
    hit = t_floor < t_best
    p = origin + rays * t_floor[..., None]
    tile = 0.5
    grout = (np.abs((p[..., 0] / tile) % 1 - 0.5) > 0.47) | (np.abs((p[..., 1] / tile) % 1 - 0.5) > 0.47)
    floor_base = rng.uniform(120, 170) * np.array([1.0, 0.98, 0.92])
    floor = floor_base * (1 + 0.08 * _wave_texture(rng, p[..., 0], p[..., 1], 6.0))[..., None]
    floor = np.where(grout[..., None], floor * 0.7, floor)
    colour[hit] = floor[hit] * (0.6 + 0.4 * light[2])
    t_best[hit] = t_floor[hit]

    # Back wall behind the worker (plane y = wall_y, facing +y), with a few posters.
    wall_y = -rng.uniform(1.0, 1.8)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_wall = np.where(rays[..., 1] < -1e-6, (wall_y - origin[1]) / rays[..., 1], np.inf)
    hit = (t_wall < t_best) & (t_wall > 0)
    p = origin + rays * t_wall[..., None]
    wall_base = np.array([rng.uniform(150, 210), rng.uniform(150, 210), rng.uniform(140, 200)])
    wall = wall_base * (1 + 0.10 * _wave_texture(rng, p[..., 0], p[..., 2], 4.0)
                        + 0.04 * _wave_texture(rng, p[..., 0], p[..., 2], 25.0))[..., None]
    for _ in range(rng.integers(2, 5)):
        cx, cz = rng.uniform(-2.0, 2.0), rng.uniform(1.2, 2.2)
        sx, sz = rng.uniform(0.2, 0.6), rng.uniform(0.2, 0.5)
        inside = (np.abs(p[..., 0] - cx) < sx / 2) & (np.abs(p[..., 2] - cz) < sz / 2)
        wall[inside] = rng.uniform(40, 230, size=3) * (1 + 0.15 * _wave_texture(rng, p[..., 0], p[..., 2], 30.0))[inside][:, None]
    colour[hit] = wall[hit] * (0.6 + 0.4 * light[1])
    t_best[hit] = t_wall[hit]

    for box in boxes:
        t_hit, normal = _ray_box(origin, rays, box.lo, box.hi)
        hit = t_hit < t_best
        if not hit.any():
            continue
        p = origin + rays * t_hit[..., None]
        if box.texture == "wood":
            grain = 0.10 * np.sin(40 * p[..., 1] + 6 * np.sin(3 * p[..., 0])) + 0.05 * _wave_texture(rng, p[..., 0], p[..., 1], 30.0)
        else:
            grain = 0.03 * _wave_texture(rng, p[..., 0], p[..., 1], 50.0)
        shade = 0.6 + 0.4 * np.clip(normal @ light, 0, 1)
        colour[hit] = (box.colour * (1 + grain)[..., None] * shade[..., None])[hit]
        t_best[hit] = t_hit[hit]

    depth = (t_best * z_per_t).astype(np.float32)
    return Background(rgb=np.clip(colour, 0, 255).astype(np.float32), depth=depth)


def _ray_box(origin: np.ndarray, rays: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Slab intersection of (H, W, 3) rays with an axis-aligned box: (t (H, W), normal (H, W, 3))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / rays
        t0 = (lo - origin) * inv
        t1 = (hi - origin) * inv
    t_min = np.minimum(t0, t1)
    t_max = np.maximum(t0, t1)
    t_near = np.nanmax(t_min, axis=-1)
    t_far = np.nanmin(t_max, axis=-1)
    hit = (t_near <= t_far) & (t_far > 0) & (t_near > 0)
    axis = np.nanargmax(t_min, axis=-1)
    normal = np.zeros(rays.shape)
    sign = -np.sign(np.take_along_axis(rays, axis[..., None], axis=-1))[..., 0]
    np.put_along_axis(normal, axis[..., None], sign[..., None], axis=-1)
    return np.where(hit, t_near, np.inf), normal
