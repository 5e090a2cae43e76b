"""The task grammar: which action follows which, and the three branches announced by cues.

One assembly cycle (durations in seconds before the per-sequence speed factor)::

    idle -> reach -> grasp -> carry            (always; the hand brings the part to the fixture)
      branch COLOUR  (cue: part colour, RGB only)      red:  place -> screw -> grasp
                                                       blue: (nothing)
      branch GESTURE (cue: left thumb up, skeleton only) up:  inspect
                                                         flat: (nothing)
      branch TRAY    (cue: robot tray distance, depth only) near: hand_over
                                                            far:  carry -> place (output bin)
    -> retract

All three cues appear at the start of the cycle (its first idle frame) and stay until their
branch is taken, so each is visible seconds before the action it announces. Outcomes are
independent fair coins. Every random number of a cycle is drawn in a fixed-size block
before the outcomes are used, so forcing one outcome (tests) changes nothing else of the plan
before that branch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = ("idle", "reach", "grasp", "carry", "place", "screw", "inspect", "hand_over", "retract")
CLASS_ID = {name: i for i, name in enumerate(CLASSES)}

BRANCHES = ("colour", "gesture", "tray")
# The modality whose data carries each branch's cue (and no other modality does).
CUE_MODALITY = {"colour": "rgb", "gesture": "skeleton", "tray": "depth"}
# The action only the "true" outcome of each branch contains (red part, thumb up, tray near).
BRANCH_MARKER = {"colour": "screw", "gesture": "inspect", "tray": "hand_over"}

# (label, hand target, mean duration s, relative spread). The hand target names are resolved
# to positions by the body model (``body.HAND_TARGETS``).
_STEP = {
    "idle": ("idle", "rest", 2.6, 0.45),
    "reach": ("reach", "supply_above", 1.0, 0.25),
    "grasp": ("grasp", "supply", 0.7, 0.25),
    "carry_fixture": ("carry", "fixture_above", 1.0, 0.25),
    "place_fixture": ("place", "fixture", 0.7, 0.25),
    "screw": ("screw", "fixture", 3.0, 0.3),
    "grasp_fixture": ("grasp", "fixture", 0.7, 0.25),
    "inspect": ("inspect", "face", 2.2, 0.3),
    "hand_over": ("hand_over", "handover", 1.6, 0.25),
    "carry_bin": ("carry", "bin_above", 1.0, 0.25),
    "place_bin": ("place", "bin", 0.7, 0.25),
    "retract": ("retract", "rest", 0.9, 0.25),
}
_STEP_ORDER = tuple(_STEP)  # fixed draw order of the per-cycle duration block


@dataclass(frozen=True)
class Segment:
    """One action of the plan: frames with start_s <= t < end_s carry ``label``."""

    label: str
    target: str
    start_s: float
    end_s: float
    cycle: int
    step: str


@dataclass(frozen=True)
class Cycle:
    """One assembly cycle: its branch outcomes, when the cues appear and when each branch is taken.

    ``reveal_s[b]``: start of the first action that differs between the two outcomes of
    branch b (the moment the outcome becomes visible in every modality).
    """

    index: int
    start_s: float
    end_s: float
    red: bool          # colour branch: red part -> place, screw, grasp
    thumb_up: bool     # gesture branch: thumb up -> inspect
    tray_near: bool    # tray branch: robot tray near -> hand_over, far -> output bin
    reveal_s: dict

    def outcome(self, branch: str) -> bool:
        return {"colour": self.red, "gesture": self.thumb_up, "tray": self.tray_near}[branch]


@dataclass(frozen=True)
class Plan:
    duration_s: float
    speed: float
    segments: tuple[Segment, ...]
    cycles: tuple[Cycle, ...]

    def labels_at(self, times: np.ndarray) -> np.ndarray:
        """(T,) seconds -> (T,) int64 class ids."""
        starts = np.array([s.start_s for s in self.segments])
        ids = np.array([CLASS_ID[s.label] for s in self.segments], dtype=np.int64)
        index = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(ids) - 1)
        return ids[index]

    def cycle_index_at(self, times: np.ndarray) -> np.ndarray:
        """(T,) seconds -> (T,) index of the cycle each time falls in."""
        starts = np.array([c.start_s for c in self.cycles])
        return np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(starts) - 1)


def plan_sequence(rng: np.random.Generator, duration_s: float, speed: float,
                  force: dict[tuple[int, str], bool] | None = None, cycle_count: int | None = None) -> Plan:
    """Plan cycles until ``duration_s`` is filled; the last cycle is cut at the end.

    ``force`` maps (cycle index, branch name) to an outcome that replaces the coin flip.
    ``cycle_count``: plan exactly that many whole cycles instead; the plan then lasts until the
    last one ends and ``duration_s`` is ignored.
    """
    if cycle_count is not None:
        duration_s = float("inf")
    force = force or {}
    segments: list[Segment] = []
    cycles: list[Cycle] = []
    t = 0.0
    index = 0
    while t < duration_s and (cycle_count is None or index < cycle_count):
        spreads = rng.uniform(-1.0, 1.0, size=len(_STEP_ORDER))
        coins = rng.random(3) < 0.5
        durations = {}
        for step, u in zip(_STEP_ORDER, spreads):
            _, _, mean, spread = _STEP[step]
            durations[step] = mean * (1.0 + spread * u) / speed
        outcome = {b: force.get((index, b), bool(c)) for b, c in zip(BRANCHES, coins)}

        steps = ["idle", "reach", "grasp", "carry_fixture"]
        reveal = {"colour": None, "gesture": None, "tray": None}
        branch_steps = (
            ("colour", ["place_fixture", "screw", "grasp_fixture"] if outcome["colour"] else []),
            ("gesture", ["inspect"] if outcome["gesture"] else []),
            ("tray", ["hand_over"] if outcome["tray"] else ["carry_bin", "place_bin"]),
        )
        start = t
        cursor = t
        for step in steps:
            segments.append(_segment(step, cursor, durations[step], index))
            cursor += durations[step]
        for branch, extra in branch_steps:
            reveal[branch] = cursor
            for step in extra:
                segments.append(_segment(step, cursor, durations[step], index))
                cursor += durations[step]
        segments.append(_segment("retract", cursor, durations["retract"], index))
        cursor += durations["retract"]
        cycles.append(Cycle(index=index, start_s=start, end_s=min(cursor, duration_s),
                            red=outcome["colour"], thumb_up=outcome["gesture"],
                            tray_near=outcome["tray"], reveal_s=reveal))
        t = cursor
        index += 1
    return Plan(duration_s=min(duration_s, t), speed=speed, segments=tuple(segments), cycles=tuple(cycles))


def _segment(step: str, start: float, duration: float, cycle: int) -> Segment:
    label, target, _, _ = _STEP[step]
    return Segment(label=label, target=target, start_s=start, end_s=start + duration, cycle=cycle, step=step)
