"""A standing worker at the bench as a kinect_v2_25 skeleton, driven by the action plan.

World frame: metres, the worker's pelvis above the origin, +X to the worker's right, +Y
forward (towards the bench and the robot), +Z up. The right hand does the task by following
hand targets (positions of the workbench stations) with smooth interpolation; the arm is a
two-bone inverse kinematics chain, the torso leans towards far targets. The left hand rests on
the bench; its thumb and hand tip carry the gesture cue (those joints are not rendered).
Everything is vectorised over the T frames of a sequence.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from retf_ros.data.synthetic.grammar import Plan


@functools.cache
def joint_index() -> dict[str, int]:
    """Joint name -> index in the kinect_v2_25 layout (the table lives in fusion.skeleton)."""
    # torch (through retf_ros.fusion): the body model is numpy only
    from retf_ros.fusion.skeleton import KINECT_V2_25
    return {name: i for i, name in enumerate(KINECT_V2_25.joints)}


LAYOUT_NAME = "kinect_v2_25"


@dataclass(frozen=True)
class BodyShape:
    """Segment lengths in metres (varied per sequence around adult proportions)."""

    torso: float          # pelvis -> spine_shoulder
    neck: float
    head: float
    shoulder_half: float
    hip_half: float
    upper_arm: float
    forearm: float
    hand: float           # wrist -> hand centre
    thigh: float
    shin: float
    foot: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "BodyShape":
        s = rng.uniform(0.9, 1.1)                 # overall stature (about 1.58 .. 1.94 m)
        v = lambda: rng.uniform(0.94, 1.06)       # noqa: E731 - independent limb proportions
        return cls(torso=0.52 * s * v(), neck=0.09 * s, head=0.16 * s * v(), shoulder_half=0.19 * s * v(),
                   hip_half=0.10 * s * v(), upper_arm=0.30 * s * v(), forearm=0.26 * s * v(),
                   hand=0.08 * s, thigh=0.45 * s * v(), shin=0.43 * s * v(), foot=0.13 * s)

    @property
    def pelvis_height(self) -> float:
        return self.thigh + self.shin + 0.07


@dataclass(frozen=True)
class Workbench:
    """Station positions (world frame) derived from the body so every target is reachable."""

    height: float
    front_y: float
    back_y: float
    stations: dict  # name -> (3,) position of the right hand

    @classmethod
    def sample(cls, rng: np.random.Generator, body: BodyShape) -> "Workbench":
        shoulder_z = body.pelvis_height + body.torso
        height = float(np.clip(body.pelvis_height + rng.uniform(-0.02, 0.06), 0.82, 1.02))
        front = rng.uniform(0.26, 0.34)
        jitter = lambda: rng.uniform(-0.03, 0.03, size=3)  # noqa: E731
        top = height + 0.05
        stations = {
            "rest": np.array([0.22, front + 0.02, top]) + jitter(),
            "supply": np.array([0.42, front + 0.22, top]) + jitter(),
            "fixture": np.array([0.02, front + 0.22, top + 0.03]) + jitter(),
            "bin": np.array([-0.22, front + 0.26, top + 0.04]) + jitter(),
            "face": np.array([0.04, 0.30, shoulder_z + 0.10]) + jitter(),
            "handover": np.array([0.12, front + 0.45, top + 0.25]) + jitter(),
            "left_rest": np.array([-0.30, front + 0.06, top - 0.02]) + jitter(),
        }
        for name in ("supply", "fixture", "bin"):
            stations[f"{name}_above"] = stations[name] + np.array([0.0, 0.0, 0.12])
        return cls(height=height, front_y=front, back_y=front + 0.62, stations=stations)


@dataclass(frozen=True)
class Motion:
    """The driven quantities of a sequence, per frame.

    hand: (T, 3) right hand centre; roll: (T,) right wrist roll (rad); thumb_up: (T,) bool
    left-hand gesture; part: (T, 3) part centre; part_visible: (T,) bool.
    """

    hand: np.ndarray
    roll: np.ndarray
    thumb_up: np.ndarray
    part: np.ndarray
    part_visible: np.ndarray


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def drive(plan: Plan, bench: Workbench, times: np.ndarray, rng: np.random.Generator) -> Motion:
    """Hand path, wrist roll, gesture and part position for every frame time (T,)."""
    n = len(times)
    st = bench.stations
    hand = np.zeros((n, 3))
    roll = np.zeros(n)
    part = np.zeros((n, 3))
    part_visible = np.zeros(n, dtype=bool)
    # Idle sway: slow sums of sines, phases drawn once per sequence.
    phase = rng.uniform(0, 2 * np.pi, size=3)
    sway = 0.015 * np.stack([np.sin(0.7 * times + phase[0]), np.sin(0.5 * times + phase[1]),
                             0.5 * np.sin(0.9 * times + phase[2])], axis=1)
    position = st["rest"].copy()
    for seg in plan.segments:
        sel = (times >= seg.start_s) & (times < seg.end_s)
        if not sel.any():  # shorter than a frame
            position = st[seg.target].copy()
            continue
        t = times[sel]
        tau = (t - seg.start_s) / max(seg.end_s - seg.start_s, 1e-6)
        goal = st[seg.target]
        if seg.label == "idle":
            path = position + (goal - position) * _smoothstep(tau * 2.0)[:, None] + sway[sel]
        elif seg.label == "screw":
            angle = 2 * np.pi * 1.4 * (t - seg.start_s)
            path = goal + 0.012 * np.stack([np.cos(angle), np.sin(angle), np.zeros_like(angle)], axis=1)
            roll[sel] = 1.0 * np.sin(angle)
        elif seg.label == "inspect":
            path = position + (goal - position) * _smoothstep(tau * 2.5)[:, None]
            path = path + 0.02 * np.stack([np.sin(3 * t), np.zeros_like(t), np.cos(2 * t)], axis=1)
            roll[sel] = 1.4 * np.sin(2 * np.pi * 0.45 * (t - seg.start_s)) * _smoothstep(tau * 3)
        elif seg.label == "grasp":
            path = position + (goal - position) * _smoothstep(tau * 1.5)[:, None]
            path[:, 2] -= 0.02 * np.sin(np.pi * tau)
        elif seg.label == "hand_over":
            path = position + (goal - position) * _smoothstep(tau * 1.6)[:, None]
        else:
            path = position + (goal - position) * _smoothstep(tau)[:, None]
        hand[sel] = path
        position = path[-1].copy()
    _place_part(plan, bench, times, hand, part, part_visible)
    thumb_up = np.zeros(n, dtype=bool)
    for cycle in plan.cycles:
        if cycle.thumb_up:
            thumb_up |= (times >= cycle.start_s) & (times < cycle.reveal_s["gesture"])
    return Motion(hand=hand, roll=roll, thumb_up=thumb_up, part=part, part_visible=part_visible)


def _place_part(plan: Plan, bench: Workbench, times: np.ndarray, hand: np.ndarray,
                part: np.ndarray, visible: np.ndarray) -> None:
    """Where each cycle's part is: on the supply tray, in the hand, on the fixture, in the bin.

    The part (12 cm across) appears on the supply tray at the cycle start, travels 5 cm below
    the hand centre while held (from the middle of a grasp to the middle of a place), rests on
    the surface it was placed on, and is gone once handed over to the robot.
    """
    st = bench.stations
    below_hand = np.array([0.0, 0.0, -0.05])
    on_surface = np.array([0.0, 0.0, 0.01])  # station points are 5 cm above the surface
    for cycle in plan.cycles:
        in_cycle = (times >= cycle.start_s) & (times < cycle.end_s)
        visible |= in_cycle
        resting = st["supply"] + on_surface
        holding = False
        for seg in (s for s in plan.segments if s.cycle == cycle.index):
            sel = (times >= seg.start_s) & (times < seg.end_s)
            late = sel & (times >= 0.5 * (seg.start_s + seg.end_s))
            if seg.label == "grasp":
                part[sel] = resting
                part[late] = hand[late] + below_hand
                holding = True
            elif seg.label == "place":
                resting = (st["fixture"] if seg.step == "place_fixture" else st["bin"]) + on_surface
                part[sel] = hand[sel] + below_hand
                part[late] = resting
                holding = False
            else:
                part[sel] = hand[sel] + below_hand if holding else resting
            if seg.label == "hand_over":
                visible[in_cycle & (times >= seg.end_s)] = False
                holding = False


def _normalise(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _two_bone(root: np.ndarray, target: np.ndarray, a: float, b: float, pole: np.ndarray):
    """Elbow/knee and the reachable end point of a two-bone chain. All (T, 3)."""
    v = target - root
    dist = np.clip(np.linalg.norm(v, axis=-1, keepdims=True), abs(a - b) + 1e-3, (a + b) * 0.999)
    axis = _normalise(v)
    end = root + axis * dist
    cos_root = (a * a + dist * dist - b * b) / (2 * a * dist)
    along = a * cos_root
    perp = a * np.sqrt(np.clip(1 - cos_root ** 2, 0, 1))
    side = pole - np.sum(pole * axis, axis=-1, keepdims=True) * axis
    mid = root + axis * along + _normalise(side) * perp
    return mid, end


def _rotate_about(v: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues rotation of (T, 3) vectors about unit (T, 3) axes by (T,) angles."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return v * c + np.cross(axis, v) * s + axis * np.sum(axis * v, axis=-1, keepdims=True) * (1 - c)


def pose(body: BodyShape, bench: Workbench, motion: Motion, times: np.ndarray,
         rng: np.random.Generator) -> np.ndarray:
    """(T, 25, 3) world-frame joints (kinect_v2_25 order), noise-free."""
    J = joint_index()
    n = len(times)
    up = np.array([0.0, 0.0, 1.0])
    phase = rng.uniform(0, 2 * np.pi, size=2)
    pelvis = np.zeros((n, 3))
    pelvis[:, 0] = 0.012 * np.sin(0.35 * times + phase[0])
    pelvis[:, 1] = 0.008 * np.sin(0.27 * times + phase[1])
    pelvis[:, 2] = body.pelvis_height

    # Lean towards the hand target when it is beyond a comfortable reach from the upright shoulder.
    shoulder0 = pelvis + up * body.torso + np.array([body.shoulder_half, 0, 0])
    reach = np.linalg.norm(motion.hand - shoulder0, axis=-1)
    comfortable = 0.8 * (body.upper_arm + body.forearm + body.hand)
    lean = np.clip((reach - comfortable) / body.torso, 0.0, 0.6) + 0.08
    heading = motion.hand[:, :2] - pelvis[:, :2]
    heading = heading / np.maximum(np.linalg.norm(heading, axis=-1, keepdims=True), 1e-6)
    torso_dir = np.concatenate([np.sin(lean)[:, None] * heading, np.cos(lean)[:, None]], axis=1)
    yaw = 0.35 * np.arctan2(motion.hand[:, 0] - pelvis[:, 0], motion.hand[:, 1] - pelvis[:, 1])
    right = np.stack([np.cos(yaw), -np.sin(yaw), np.zeros(n)], axis=1)
    forward = np.cross(up, right)

    joints = np.zeros((n, 25, 3))
    joints[:, J["pelvis"]] = pelvis
    spine_shoulder = pelvis + torso_dir * body.torso
    joints[:, J["spine_mid"]] = pelvis + torso_dir * body.torso * 0.5 + forward * 0.02
    joints[:, J["spine_shoulder"]] = spine_shoulder
    neck = spine_shoulder + _normalise(torso_dir + up) * body.neck
    joints[:, J["neck"]] = neck
    joints[:, J["head"]] = neck + _normalise(torso_dir + up * 2) * body.head * 0.6

    for side, sign in (("left", -1.0), ("right", 1.0)):
        hip = pelvis + sign * right * body.hip_half - up * 0.06
        foot_ground = hip * np.array([1, 1, 0]) + sign * right * 0.03 + forward * 0.02 + up * 0.07
        knee, ankle = _two_bone(hip, foot_ground, body.thigh, body.shin, forward)
        joints[:, J[f"hip_{side}"]] = hip
        joints[:, J[f"knee_{side}"]] = knee
        joints[:, J[f"ankle_{side}"]] = ankle
        joints[:, J[f"foot_{side}"]] = ankle + forward * body.foot - up * 0.05
        joints[:, J[f"shoulder_{side}"]] = spine_shoulder + sign * right * body.shoulder_half - up * 0.02

    _arm(joints, J, "right", motion.hand, motion.roll, body, right, up, thumb_up=None)
    left_target = np.broadcast_to(bench.stations["left_rest"], (n, 3)) + 0.3 * (pelvis - pelvis.mean(0))
    _arm(joints, J, "left", left_target, np.zeros(n), body, right, up, thumb_up=motion.thumb_up)
    return joints


def _arm(joints, J, side, hand_target, roll, body, right, up, thumb_up):
    """Fill shoulder->elbow->wrist->hand->tip/thumb of one arm (in place)."""
    sign = 1.0 if side == "right" else -1.0
    shoulder = joints[:, J[f"shoulder_{side}"]]
    pole = -up + sign * right * 0.6
    # Straight wrist: the hand centre is the end of a forearm+hand bone.
    elbow, hand = _two_bone(shoulder, hand_target, body.upper_arm, body.forearm + body.hand, pole)
    axis = _normalise(hand - elbow)
    wrist = elbow + axis * body.forearm
    # Palm normal: perpendicular to the forearm, pointing down, turned by the wrist roll.
    palm = _normalise(-up - np.sum(-up * axis, axis=-1, keepdims=True) * axis)
    palm = _rotate_about(palm, axis, roll)
    thumb_dir = _normalise(np.cross(palm, axis) * -sign)
    tip = hand + axis * 0.07
    thumb = wrist + axis * 0.04 + thumb_dir * 0.045
    if thumb_up is not None:
        # Thumb raised, fingers curled: moves only the tip and thumb joints (about 6-9 cm).
        fist_tip = hand + axis * 0.02 + palm * 0.03
        raised_thumb = hand + up * 0.065 - axis * 0.01
        tip = np.where(thumb_up[:, None], fist_tip, tip)
        thumb = np.where(thumb_up[:, None], raised_thumb, thumb)
    joints[:, J[f"elbow_{side}"]] = elbow
    joints[:, J[f"wrist_{side}"]] = wrist
    joints[:, J[f"hand_{side}"]] = hand
    joints[:, J[f"hand_tip_{side}"]] = tip
    joints[:, J[f"thumb_{side}"]] = thumb
