"""UTKinect-Action3D skeletons + action labels -> clip store (docs/data.md).

Source: ``joints_sNN_eNN.txt`` (a line = depth-frame id + 20 joints x (x, y, z) metres, Kinect
v1 camera space) and ``actionLabel.txt`` (a sequence name line ``s01_e01`` followed by lines
``label: start end``; a segment may read NaN), anywhere under SRC. Frame ids are not
contiguous and may repeat: a repeated id keeps its first line. A clip is one of the 20
continuous sequences; its frames are the distinct ids in increasing order, stamped
``id / fps`` (fps 30, the id clock); frames outside every segment are ``undefined``.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from retf_ros.data.clipstore import Clip, ClipStoreWriter
from retf_ros.data.readers.common import ImportResult, LineError, parse_floats, progress, require_some
from retf_ros.errors import DataFormatError

ACTIONS = ("walk", "sitDown", "standUp", "pickUp", "carry", "throw", "push", "pull", "waveHands", "clapHands")
UNDEFINED = "undefined"
NUM_JOINTS = 20
SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST = (1, 3, 5, 7), (9,), (2, 4, 6, 8, 10)
_SEQUENCE = re.compile(r"^s(\d+)_e(\d+)$")
_JOINTS_FILE = re.compile(r"^joints_(s\d+_e\d+)\.txt$")


def read_action_labels(path: Path) -> tuple[dict[str, list[tuple[str, float, float]]], list[str]]:
    """actionLabel.txt -> {sequence: [(label, start id, end id)]} (NaN segments dropped), problems."""
    segments: dict[str, list[tuple[str, float, float]]] = {}
    problems: list[str] = []
    current = None
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if _SEQUENCE.match(line):
            current = line
            segments[current] = []
            continue
        label, sep, rest = line.partition(":")
        values = rest.split()
        if not sep or current is None or len(values) != 2:
            problems.append(f"{path}:{number}: expected 'label: start end' after a sequence name, got {raw!r}")
            continue
        try:
            start, end = float(values[0]), float(values[1])
        except ValueError:
            problems.append(f"{path}:{number}: segment bounds must be numbers or NaN, got {raw!r}")
            continue
        if np.isnan(start) or np.isnan(end):
            continue  # the action was not performed / not annotated in this sequence
        segments[current].append((label.strip(), start, end))
    return segments, problems


def read_joints(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """joints file -> (frame ids (T,) int64 sorted and distinct, joints (T, 20, 3) float32)."""
    ids: list[int] = []
    rows: list[list[float]] = []
    seen: set[int] = set()
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        tokens = raw.split()
        if not tokens:
            continue
        try:
            frame = int(float(tokens[0]))
        except ValueError:
            raise LineError(path, number, f"frame id must be a number, got {tokens[0]!r}") from None
        values = parse_floats(tokens[1:], path, number, 3 * NUM_JOINTS)
        if frame in seen:
            continue
        seen.add(frame)
        ids.append(frame)
        rows.append(values)
    if not ids:
        raise DataFormatError(f"{path}: no joint lines")
    order = np.argsort(ids, kind="stable")
    return (np.asarray(ids, dtype=np.int64)[order],
            np.asarray(rows, dtype=np.float32)[order].reshape(-1, NUM_JOINTS, 3))


def import_utkinect(src: Path, out: Path, fps: float | None = None) -> ImportResult:
    fps = 30.0 if fps is None else float(fps)
    src, out = Path(src), Path(out)
    label_files = sorted(src.rglob("actionLabel.txt"))
    if not label_files:
        raise DataFormatError(f"{src}: no actionLabel.txt found (searched recursively)")
    segments, problems = read_action_labels(label_files[0])
    joint_files = {m.group(1): p for p in sorted(src.rglob("joints_*.txt")) if (m := _JOINTS_FILE.match(p.name))}
    if not joint_files:
        raise DataFormatError(f"{src}: no joints_sNN_eNN.txt files found (searched recursively)")

    extra = sorted({label for segs in segments.values() for label, _, _ in segs} - set(ACTIONS))
    classes = [UNDEFINED, *ACTIONS, *extra]
    class_id = {name: i for i, name in enumerate(classes)}
    result = ImportResult(problems=problems)
    writer = ClipStoreWriter(out, classes, {})
    subject_of: dict[str, int] = {}
    steps: list[np.ndarray] = []
    for name, path in progress(sorted(joint_files.items()), "import utkinect"):
        if name not in segments:
            result.problems.append(f"{path}: sequence {name} has no entry in {label_files[0]}")
            continue
        try:
            ids, joints = read_joints(path)
        except DataFormatError as exc:
            result.problems.append(str(exc))
            continue
        labels = np.zeros(len(ids), dtype=np.int64)
        for label, start, end in segments[name]:
            labels[(ids >= start) & (ids <= end)] = class_id[label]
        writer.add(Clip(clip_id=name, stamps=ids / fps, labels=labels, skeleton=joints))
        subject_of[name] = int(_SEQUENCE.match(name).group(1))
        steps.append(np.diff(ids))
        result.clips += 1
        result.frames += len(ids)
    require_some(result, src, "UTKinect sequences")

    parts = {part: [c for c, s in sorted(subject_of.items()) if s in subjects]
             for part, subjects in (("train", SPLIT_TRAIN), ("val", SPLIT_VAL), ("test", SPLIT_TEST))}
    writer.write_split("cross_subject", parts)
    all_steps = np.concatenate(steps) if steps else np.array([])
    median_step = float(np.median(all_steps)) if all_steps.size else 1.0
    writer.meta = {
        "source": "utkinect",
        "fps": fps / max(median_step, 1.0),
        "source_fps": fps,
        "modalities": ["skeleton"],
        "skeleton_layout": "kinect_v1_20",
        "skeleton_frame": "Kinect v1 camera space (x left, y up, z forward), metres",
        "default_split": "cross_subject",
        "task": "anticipation",
        "notes": ("frames are the distinct depth-frame ids of each joints file (first line kept when an id "
                  "repeats), stamped id / source_fps; fps is source_fps / the median id step; frames outside "
                  "every labelled segment are 'undefined'; split cross_subject: subjects 1 3 5 7 train, "
                  "9 val, 2 4 6 8 10 test"),
    }
    writer.finish()
    result.splits = ["cross_subject"]
    return result
