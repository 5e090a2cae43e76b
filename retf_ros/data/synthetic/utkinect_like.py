"""Source files in the public UTKinect-Action3D format (``actionLabel.txt`` + ``joints_sNN_eNN.txt``,
docs/data.md) with a procedural skeleton, for measuring training in the UTKinect regime where the
real dataset is not available: 10 subjects x 2 sequences, each the 10 actions in the dataset's
order with ``undefined`` pauses between them, 20 Kinect v1 joints at 30 frame ids per second.

What makes it a fair stand-in, and what does not: the class set, the order, the split
(`retf data import utkinect`, cross_subject 8 / 2 / 10 sequences), the sequence lengths
(~25 s, ~15 000 frames in all) and the per-subject pace (a slow subject is slow in every
action) follow the dataset; the motions are simple parametric movements (one per action,
with phases: a sit-down lowers the hips over its whole length), with per-sequence body
size, facing direction, position and joint noise. Real motion is richer and noisier.

Usage: python -m retf_ros.data.synthetic.utkinect_like OUT [--seed 0]
       retf data import utkinect OUT --out STORE
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from retf_ros.data.readers.utkinect import ACTIONS

# Mean length (frame ids at 30 per second) of each action in ACTIONS order.
BASE_FRAMES = {"walk": 90, "sitDown": 45, "standUp": 40, "pickUp": 60, "carry": 90, "throw": 40,
               "push": 45, "pull": 45, "waveHands": 70, "clapHands": 60}

# Standing pose, metres, body frame (x left, y up, z towards the camera), kinect_v1_20 order.
STANDING = np.array([
    [0.0, 0.0, 0.0], [0.0, 0.25, 0.0], [0.0, 0.5, 0.0], [0.0, 0.65, 0.0],
    [0.18, 0.45, 0.0], [0.22, 0.2, 0.0], [0.24, -0.02, 0.0], [0.24, -0.1, 0.0],
    [-0.18, 0.45, 0.0], [-0.22, 0.2, 0.0], [-0.24, -0.02, 0.0], [-0.24, -0.1, 0.0],
    [0.1, -0.05, 0.0], [0.1, -0.45, 0.0], [0.1, -0.85, 0.0], [0.1, -0.9, 0.08],
    [-0.1, -0.05, 0.0], [-0.1, -0.45, 0.0], [-0.1, -0.85, 0.0], [-0.1, -0.9, 0.08],
], dtype=np.float64)
LEFT_ARM, RIGHT_ARM = [5, 6, 7], [9, 10, 11]
LEFT_LEG, RIGHT_LEG = [13, 14, 15], [17, 18, 19]
UPPER = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]


def _pose(action: str, phase: float, t: float) -> np.ndarray:
    """(20, 3) body-frame pose of ``action`` at ``phase`` in [0, 1] of the segment, ``t`` seconds."""
    p = STANDING.copy()
    swing = np.sin(2 * np.pi * 1.8 * t)
    if action in ("walk", "carry"):
        p[LEFT_LEG, 2] += 0.2 * swing
        p[RIGHT_LEG, 2] -= 0.2 * swing
        if action == "walk":
            p[LEFT_ARM, 2] -= 0.15 * swing
            p[RIGHT_ARM, 2] += 0.15 * swing
        else:  # a box held in front
            p[LEFT_ARM[1:], :] = [[0.15, 0.1, 0.35], [0.15, 0.1, 0.4]]
            p[RIGHT_ARM[1:], :] = [[-0.15, 0.1, 0.35], [-0.15, 0.1, 0.4]]
    elif action in ("sitDown", "standUp"):
        depth = phase if action == "sitDown" else 1.0 - phase
        p[:13] += [0.0, -0.45 * depth, -0.2 * depth]
        p[16] += [0.0, -0.45 * depth, -0.2 * depth]
        p[[13, 17], 2] += 0.3 * depth
        p[[13, 17], 1] -= 0.05 * depth
    elif action == "pickUp":
        bend = np.sin(np.pi * phase)
        p[UPPER, 1] -= 0.5 * bend * (p[UPPER, 1] / 0.65 + 0.3)
        p[UPPER, 2] += 0.4 * bend
        p[[7, 11], 1] -= 0.3 * bend
    elif action == "throw":
        angle = np.pi * (1.5 * phase - 0.5)
        p[RIGHT_ARM, :] = p[8] + np.outer([0.3, 0.45, 0.55], [0.0, np.sin(angle), np.cos(angle)])
    elif action in ("push", "pull"):
        reach = np.sin(np.pi * phase) if action == "push" else 1.0 - np.sin(np.pi * phase)
        for arm, x in ((LEFT_ARM, 0.2), (RIGHT_ARM, -0.2)):
            p[arm] = [[x, 0.4, 0.2 + 0.1 * reach], [x, 0.4, 0.35 + 0.2 * reach], [x, 0.4, 0.4 + 0.25 * reach]]
        p[:4, 2] += 0.1 * reach
    elif action == "waveHands":
        wave = np.sin(2 * np.pi * 2.0 * t)
        for arm, side in ((LEFT_ARM, 1), (RIGHT_ARM, -1)):
            p[arm] = [[side * 0.3, 0.6, 0.0], [side * (0.35 + 0.1 * wave), 0.85, 0.0],
                      [side * (0.38 + 0.12 * wave), 0.92, 0.0]]
    elif action == "clapHands":
        gap = 0.12 * (1 + np.sin(2 * np.pi * 2.5 * t))
        for arm, side in ((LEFT_ARM, 1), (RIGHT_ARM, -1)):
            p[arm] = [[side * 0.2, 0.3, 0.2], [side * (0.02 + gap), 0.35, 0.35], [side * (0.01 + gap), 0.37, 0.4]]
    return p


def sequence(rng: np.random.Generator, pace: float) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """(T, 20, 3) camera-space joints and [(action, first id, last id)] of one sequence."""
    plan: list[tuple[str | None, int]] = [(None, int(rng.integers(15, 40)))]
    for action in ACTIONS:
        plan.append((action, max(12, int(round(BASE_FRAMES[action] * pace * rng.uniform(0.8, 1.25))))))
        plan.append((None, int(rng.integers(10, 35))))
    facing = rng.uniform(-0.6, 0.6)
    rotation = np.array([[np.cos(facing), 0, np.sin(facing)], [0, 1, 0], [-np.sin(facing), 0, np.cos(facing)]])
    scale = rng.uniform(0.85, 1.15)
    origin = np.array([rng.uniform(-0.4, 0.4), rng.uniform(-0.1, 0.1), rng.uniform(2.3, 3.2)])
    frames, segments, frame_id, walked = [], [], 1, 0.0
    for action, length in plan:
        if action is not None:
            segments.append((action, frame_id, frame_id + length - 1))
        for k in range(length):
            t = frame_id / 30.0
            pose = _pose(action or "undefined", k / max(length - 1, 1), t) * scale
            if action in ("walk", "carry"):
                walked += 0.02
            pose[:, 0] += 0.4 * np.sin(walked)  # walking moves the body sideways and back
            frames.append(pose @ rotation.T + origin + rng.normal(0.0, 0.012, pose.shape))
            frame_id += 1
    return np.asarray(frames, dtype=np.float32), segments


def write_source(out: str | Path, seed: int = 0) -> Path:
    """Write ``actionLabel.txt`` and ``joints/joints_sNN_eNN.txt`` for 10 subjects x 2 sequences."""
    out = Path(out)
    (out / "joints").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = []
    for subject in range(1, 11):
        pace = rng.uniform(0.7, 1.35)
        for episode in (1, 2):
            name = f"s{subject:02d}_e{episode:02d}"
            joints, segments = sequence(rng, pace)
            lines = [" ".join([str(i + 1)] + [f"{v:.4f}" for v in frame.ravel()]) for i, frame in enumerate(joints)]
            (out / "joints" / f"joints_{name}.txt").write_text("\n".join(lines) + "\n")
            labels.append(name)
            labels.extend(f"{action}: {first} {last}" for action, first, last in segments)
    (out / "actionLabel.txt").write_text("\n".join(labels) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_source(args.out, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
