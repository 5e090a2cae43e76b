"""Contact sheet of one synthetic sequence (``retf synth --preview OUT.png``).

Rows: RGB, depth (colourised, invalid pixels black), RGB with the skeleton overlaid (left
thumb and hand tip highlighted: the gesture cue). Columns: frames spread over the first
cycles. Below: the label timeline of the whole sequence with every cycle's three cue values.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from retf_ros.data.synthetic import grammar
from retf_ros.data.synthetic.body import joint_index
from retf_ros.data.synthetic.generate import SynthConfig, generate_sequence
from retf_ros.errors import RetfError

BONES = (("pelvis", "spine_mid"), ("spine_mid", "spine_shoulder"), ("spine_shoulder", "neck"), ("neck", "head"),
         ("spine_shoulder", "shoulder_left"), ("shoulder_left", "elbow_left"), ("elbow_left", "wrist_left"),
         ("wrist_left", "hand_left"), ("hand_left", "hand_tip_left"), ("wrist_left", "thumb_left"),
         ("spine_shoulder", "shoulder_right"), ("shoulder_right", "elbow_right"), ("elbow_right", "wrist_right"),
         ("wrist_right", "hand_right"), ("hand_right", "hand_tip_right"), ("wrist_right", "thumb_right"),
         ("pelvis", "hip_left"), ("hip_left", "knee_left"), ("knee_left", "ankle_left"), ("ankle_left", "foot_left"),
         ("pelvis", "hip_right"), ("hip_right", "knee_right"), ("knee_right", "ankle_right"),
         ("ankle_right", "foot_right"))
# One BGR colour per class for the timeline.
CLASS_COLOURS = ((160, 160, 160), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
                 (145, 30, 180), (70, 240, 240), (240, 50, 230), (128, 128, 0))
TILE_SCALE = 2


def colourise_depth(depth_mm: np.ndarray, max_mm: float = 4500.0) -> np.ndarray:
    """(H, W) uint16 mm -> (H, W, 3) BGR, invalid pixels black."""
    scaled = np.clip(depth_mm.astype(np.float32) / max_mm * 255.0, 0, 255).astype(np.uint8)
    out = cv2.applyColorMap(255 - scaled, cv2.COLORMAP_TURBO)
    out[depth_mm == 0] = 0
    return out


def _overlay_skeleton(bgr: np.ndarray, joints_cam: np.ndarray, K: np.ndarray, scale: int) -> np.ndarray:
    out = bgr.copy()
    if not np.isfinite(joints_cam).any():
        cv2.putText(out, "skeleton dropout", (4, out.shape[0] - 6), cv2.FONT_HERSHEY_PLAIN, 0.9, (0, 0, 255), 1)
        return out
    z = np.where(joints_cam[:, 2] > 1e-3, joints_cam[:, 2], np.nan)
    uv = np.stack([K[0, 0] * joints_cam[:, 0] / z + K[0, 2], K[1, 1] * joints_cam[:, 1] / z + K[1, 2]], 1) * scale
    J = joint_index()
    for a, b in BONES:
        pa, pb = uv[J[a]], uv[J[b]]
        if np.isfinite(pa).all() and np.isfinite(pb).all():
            cv2.line(out, tuple(int(v) for v in pa), tuple(int(v) for v in pb), (0, 255, 0), 1, cv2.LINE_AA)
    for name in ("thumb_left", "hand_tip_left"):
        if np.isfinite(uv[J[name]]).all():
            cv2.circle(out, tuple(int(v) for v in uv[J[name]]), 3, (0, 0, 255), -1, cv2.LINE_AA)
    return out


def contact_sheet(seed: int = 0, index: int = 0, columns: int = 6, config: SynthConfig = SynthConfig()) -> np.ndarray:
    """BGR image of one sequence; deterministic for (seed, index)."""
    sequence = generate_sequence(seed, index, config)
    clip = sequence.clip
    cycles = sequence.plan.cycles
    span_end = cycles[min(1, len(cycles) - 1)].end_s
    times = np.linspace(0.5, min(span_end, clip.stamps[-1]) - 0.5, columns)
    frames = np.searchsorted(clip.stamps, times)
    h, w = config.height * TILE_SCALE, config.width * TILE_SCALE
    header = 28
    tiles = []
    for t in frames:
        rgb = cv2.resize(clip.rgb[t][..., ::-1], (w, h), interpolation=cv2.INTER_NEAREST)
        depth = cv2.resize(colourise_depth(clip.depth[t]), (w, h), interpolation=cv2.INTER_NEAREST)
        skel = _overlay_skeleton(rgb, clip.skeleton[t], clip.intrinsics, TILE_SCALE)
        top = np.full((header, w, 3), 255, np.uint8)
        label = grammar.CLASSES[clip.labels[t]]
        cv2.putText(top, f"t={clip.stamps[t]:.1f}s {label}", (4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
        tiles.append(np.concatenate([top, rgb, depth, skel], axis=0))
    grid = np.concatenate([np.pad(t, ((0, 0), (0, 4), (0, 0)), constant_values=255) for t in tiles], axis=1)
    timeline = _timeline(sequence, grid.shape[1], frames)
    return np.concatenate([grid, timeline], axis=0)


def _timeline(sequence, width: int, marks: np.ndarray) -> np.ndarray:
    clip = sequence.clip
    n = clip.num_frames
    bar_h, legend_h, cue_h = 24, 22, 18
    out = np.full((bar_h + cue_h + legend_h + 30, width, 3), 255, np.uint8)
    x = (np.arange(width) * n // width).clip(0, n - 1)
    out[4:4 + bar_h] = np.array(CLASS_COLOURS, np.uint8)[clip.labels[x]][None]
    for t in marks:
        cv2.line(out, (int(t * width / n), 0), (int(t * width / n), bar_h + 6), (0, 0, 0), 2)
    for cycle in sequence.plan.cycles:
        x0 = int(np.searchsorted(clip.stamps, cycle.start_s) * width / n)
        text = f"{'red' if cycle.red else 'blue'}/{'thumb' if cycle.thumb_up else 'flat'}/" \
               f"{'near' if cycle.tray_near else 'far'}"
        cv2.line(out, (x0, 4), (x0, bar_h + cue_h), (0, 0, 0), 1)
        cv2.putText(out, text, (x0 + 2, bar_h + cue_h), cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 0, 0), 1)
    x_cursor = 4
    for name, colour in zip(grammar.CLASSES, CLASS_COLOURS):
        y = bar_h + cue_h + legend_h
        cv2.rectangle(out, (x_cursor, y - 10), (x_cursor + 10, y), colour, -1)
        cv2.putText(out, name, (x_cursor + 13, y), cv2.FONT_HERSHEY_PLAIN, 0.9, (0, 0, 0), 1)
        x_cursor += 16 + 9 * len(name)
    cv2.putText(out, "cues per cycle: part colour (RGB) / left thumb (skeleton) / robot tray distance (depth)",
                (4, bar_h + cue_h + legend_h + 22), cv2.FONT_HERSHEY_PLAIN, 0.9, (0, 0, 0), 1)
    return out


def write_preview(path: str | Path, seed: int = 0, config: SynthConfig = SynthConfig()) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise RetfError(f"--preview {path}: the file name must end in .png or .jpg")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), contact_sheet(seed, 0, config=config)):
        raise RetfError(f"--preview {path}: could not write the image")
    return path
