"""NTU RGB+D (60 / 120) -> clip store (docs/data.md).

``SsssCcccPpppRrrrAaaa.skeleton`` text files (setup, camera, performer, replication, action),
anywhere under SRC. Format: frame count; per frame a body count; per body one line of 10
values (body id, clipped edges, hand confidences and states, restricted, lean x, lean y,
tracking state), the joint count, then one line of 12 values per joint (x, y, z, depthX,
depthY, colorX, colorY, orientation w x y z, tracking state). Optional, same stem:
a masked-depth folder ``<stem>/`` of 16-bit PNGs (millimetres, 512x424) and ``<stem>_rgb.avi``.

Every body is kept: ``skeletons`` (T, P, 25, 3), NaN where a body is absent, bodies ordered by
first appearance; ``skeleton`` is the main actor, the body whose joints move most (largest
summed variance of its joint coordinates over the frames it is tracked in). A video carries
one action, so every frame has the same label: on NTU the task is early recognition.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retf_ros.data.clipstore import Clip, ClipStoreWriter
from retf_ros.data.readers.common import (
    ImportResult, LineError, carve_validation, parse_floats, progress, require_some)
from retf_ros.errors import DataFormatError

NAME = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")
NUM_JOINTS = 25
CROSS_SUBJECT_TRAIN = frozenset({1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38})
CROSS_VIEW_TRAIN = frozenset({2, 3})

# The 120 action names of NTU RGB+D (A001-A060) and NTU RGB+D 120 (A061-A120), in label order,
# as the dataset authors list them (shortened to identifiers).
ACTION_NAMES = (
    "drink_water", "eat_meal_or_snack", "brushing_teeth", "brushing_hair", "drop", "pickup", "throw",
    "sitting_down", "standing_up", "clapping", "reading", "writing", "tear_up_paper", "wear_jacket",
    "take_off_jacket", "wear_a_shoe", "take_off_a_shoe", "wear_on_glasses", "take_off_glasses",
    "put_on_a_hat_or_cap", "take_off_a_hat_or_cap", "cheer_up", "hand_waving", "kicking_something",
    "put_in_or_take_out_of_pocket", "hopping", "jump_up", "make_a_phone_call", "playing_with_phone_or_tablet",
    "typing_on_a_keyboard", "pointing_to_something_with_finger", "taking_a_selfie", "check_time_from_watch",
    "rub_two_hands_together", "nod_head_or_bow", "shake_head", "wipe_face", "salute", "put_the_palms_together",
    "cross_hands_in_front", "sneeze_or_cough", "staggering", "falling", "touch_head", "touch_chest",
    "touch_back", "touch_neck", "nausea_or_vomiting", "use_a_fan", "punching_or_slapping_other_person",
    "kicking_other_person", "pushing_other_person", "pat_on_back_of_other_person",
    "point_finger_at_the_other_person", "hugging_other_person", "giving_something_to_other_person",
    "touch_other_persons_pocket", "handshaking", "walking_towards_each_other", "walking_apart_from_each_other",
    # NTU RGB+D 120 additions (A061-A120)
    "put_on_headphone", "take_off_headphone", "shoot_at_the_basket", "bounce_ball", "tennis_bat_swing",
    "juggling_table_tennis_balls", "hush", "flick_hair", "thumb_up", "thumb_down", "make_ok_sign",
    "make_victory_sign", "staple_book", "counting_money", "cutting_nails", "cutting_paper", "snapping_fingers",
    "open_bottle", "sniff", "squat_down", "toss_a_coin", "fold_paper", "ball_up_paper", "play_magic_cube",
    "apply_cream_on_face", "apply_cream_on_hand_back", "put_on_bag", "take_off_bag",
    "put_something_into_a_bag", "take_something_out_of_a_bag", "open_a_box", "move_heavy_objects",
    "shake_fist", "throw_up_cap_or_hat", "hands_up", "cross_arms", "arm_circles", "arm_swings",
    "running_on_the_spot", "butt_kicks", "cross_toe_touch", "side_kick", "yawn", "stretch_oneself",
    "blow_nose", "hit_other_person_with_something", "wield_knife_towards_other_person",
    "knock_over_other_person", "grab_other_persons_stuff", "shoot_at_other_person_with_a_gun",
    "step_on_foot", "high_five", "cheers_and_drink", "carry_something_with_other_person",
    "take_a_photo_of_other_person", "follow_other_person", "whisper_in_other_persons_ear",
    "exchange_things_with_other_person", "support_somebody_with_hand", "finger_guessing_game",
)


@dataclass(frozen=True)
class NtuName:
    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @classmethod
    def parse(cls, stem: str) -> "NtuName | None":
        m = NAME.match(stem)
        return cls(*(int(g) for g in m.groups())) if m else None


def read_skeleton_file(path: Path) -> tuple[np.ndarray, list[int]]:
    """.skeleton -> (bodies (T, P, 25, 3) float32 NaN where absent, body ids in column order).

    Raises LineError naming the line of the first malformed or missing value.
    """
    lines = path.read_text().splitlines()
    cursor = 0

    def next_line() -> tuple[int, list[str]]:
        nonlocal cursor
        while cursor < len(lines) and not lines[cursor].strip():
            cursor += 1
        if cursor >= len(lines):
            raise LineError(path, len(lines) + 1, "file ends early")
        cursor += 1
        return cursor, lines[cursor - 1].split()

    def next_int(what: str) -> int:
        number, tokens = next_line()
        if len(tokens) != 1 or not tokens[0].isdigit():
            raise LineError(path, number, f"expected the {what} (one integer), got {' '.join(tokens)!r}")
        return int(tokens[0])

    def read_joint_block() -> np.ndarray:
        """The next 25 joint lines -> (25, 3) positions; one C-level parse for the common case."""
        nonlocal cursor
        first = cursor
        block = lines[first:first + NUM_JOINTS]
        tokens = " ".join(block).split()
        if len(block) == NUM_JOINTS and len(tokens) == 12 * NUM_JOINTS:
            try:
                values = np.array(tokens, dtype=np.float64).reshape(NUM_JOINTS, 12)
            except ValueError:
                values = None
            if values is not None and all(len(line.split()) == 12 for line in block):
                cursor += NUM_JOINTS
                return values[:, :3].astype(np.float32)
        joints = np.empty((NUM_JOINTS, 3), dtype=np.float32)  # slow path: find the bad line
        for j in range(NUM_JOINTS):
            number, row = next_line()
            joints[j] = parse_floats(row, path, number, 12)[:3]
        return joints

    num_frames = next_int("frame count")
    column: dict[str, int] = {}
    frames: list[list[tuple[int, np.ndarray]]] = []
    for _ in range(num_frames):
        bodies = []
        for _ in range(next_int("body count")):
            number, info = next_line()
            if len(info) != 10:
                raise LineError(path, number, f"body line needs 10 values, found {len(info)}")
            body_id = info[0]
            joint_count = next_int("joint count")
            if joint_count != NUM_JOINTS:
                raise LineError(path, cursor, f"expected {NUM_JOINTS} joints, found {joint_count}")
            bodies.append((column.setdefault(body_id, len(column)), read_joint_block()))
        frames.append(bodies)
    out = np.full((num_frames, max(len(column), 1), NUM_JOINTS, 3), np.nan, dtype=np.float32)
    for t, bodies in enumerate(frames):
        for p, joints in bodies:
            out[t, p] = joints
    return out, [int(k) if k.isdigit() else k for k in column]


def main_actor(bodies: np.ndarray) -> int:
    """Index of the body with the largest joint motion (summed variance over tracked frames)."""
    motion = []
    for p in range(bodies.shape[1]):
        track = bodies[:, p].reshape(len(bodies), -1)
        tracked = np.isfinite(track).all(axis=1)
        motion.append(float(track[tracked].var(axis=0).sum()) if tracked.sum() > 1 else -1.0)
    return int(np.argmax(motion))


def _aligned(count: int, frames: int) -> np.ndarray:
    """Indices of ``count`` source images for ``frames`` skeleton frames (nearest, stretched)."""
    if count == frames:
        return np.arange(frames)
    return np.rint(np.linspace(0, count - 1, frames)).astype(np.int64)


def _resize(image: np.ndarray, width: int, nearest: bool) -> np.ndarray:
    # optional (extra "images"): only the RGB-D video import needs it
    import cv2
    h, w = image.shape[:2]
    height = max(1, int(round(h * width / w)))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


def read_depth_folder(folder: Path, frames: int, width: int) -> np.ndarray:
    """Masked-depth PNG folder -> (T, h, width) uint16 mm aligned to the skeleton frames."""
    # optional (extra "images"): only the RGB-D video import needs it
    import cv2
    files = sorted(folder.glob("*.png"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if not files:
        raise DataFormatError(f"{folder}: no PNG files")
    out = None
    for t, index in enumerate(_aligned(len(files), frames)):
        image = cv2.imread(str(files[index]), cv2.IMREAD_UNCHANGED)
        if image is None or image.ndim != 2 or image.dtype != np.uint16:
            raise DataFormatError(f"{files[index]}: not a 16-bit single-channel depth PNG")
        small = _resize(image, width, nearest=True)  # nearest: never blend a hole into its neighbours
        if out is None:
            out = np.empty((frames, *small.shape), dtype=np.uint16)
        out[t] = small
    return out


def read_rgb_video(path: Path, frames: int, width: int) -> np.ndarray:
    """_rgb.avi -> (T, h, width, 3) uint8 RGB aligned to the skeleton frames."""
    # optional (extra "images"): only the RGB-D video import needs it
    import cv2
    capture = cv2.VideoCapture(str(path))
    decoded = []
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            decoded.append(_resize(bgr, width, nearest=False)[..., ::-1])
    finally:
        capture.release()
    if not decoded:
        raise DataFormatError(f"{path}: no video frames could be decoded")
    return np.ascontiguousarray(np.stack(decoded)[_aligned(len(decoded), frames)])


def scan(src: Path) -> tuple[list[Path], dict[str, Path], dict[str, Path]]:
    """One walk over SRC: skeleton files, depth folders by stem, rgb videos by stem.

    Depth folders (named like a clip) are not descended into: the full dataset holds millions
    of PNGs, and only the folder name is needed here.
    """
    skeletons: list[Path] = []
    depth: dict[str, Path] = {}
    rgb: dict[str, Path] = {}
    for folder, dirs, files in os.walk(src):
        base = Path(folder)
        for name in [d for d in dirs if NAME.match(d)]:
            depth[name] = base / name
            dirs.remove(name)
        for name in files:
            if name.endswith(".skeleton") and NAME.match(name[:-len(".skeleton")]):
                skeletons.append(base / name)
            elif name.endswith("_rgb.avi"):
                rgb[name[:-len("_rgb.avi")]] = base / name
    return sorted(skeletons, key=lambda p: p.stem), depth, rgb


def import_ntu(src: Path, out: Path, fps: float | None = None, image_width: int = 160) -> ImportResult:
    fps = 30.0 if fps is None else float(fps)
    src, out = Path(src), Path(out)
    files, depth_dirs, rgb_files = scan(src)
    if not files:
        raise DataFormatError(f"{src}: no SsssCcccPpppRrrrAaaa.skeleton files found (searched recursively)")
    names = {p.stem: NtuName.parse(p.stem) for p in files}
    num_classes = 60 if max(n.action for n in names.values()) <= 60 else 120
    if max(n.action for n in names.values()) > len(ACTION_NAMES):
        raise DataFormatError(f"{src}: action ids above A{len(ACTION_NAMES):03d} are not NTU RGB+D actions")
    classes = list(ACTION_NAMES[:num_classes])
    writer = ClipStoreWriter(out, classes, {})
    result = ImportResult()
    imported: dict[str, NtuName] = {}
    modality_sets = []
    for path in progress(files, "import ntu"):
        name = names[path.stem]
        try:
            bodies, _ = read_skeleton_file(path)
            if len(bodies) == 0:
                raise DataFormatError(f"{path}: zero frames")
            t = len(bodies)
            clip = Clip(clip_id=path.stem, stamps=np.arange(t) / fps,
                        labels=np.full(t, name.action - 1, dtype=np.int64),
                        skeleton=np.ascontiguousarray(bodies[:, main_actor(bodies)]), skeletons=bodies)
            if path.stem in depth_dirs:
                clip.depth = read_depth_folder(depth_dirs[path.stem], t, image_width)
            if path.stem in rgb_files:
                clip.rgb = read_rgb_video(rgb_files[path.stem], t, image_width)
        except DataFormatError as exc:
            result.problems.append(str(exc))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            result.problems.append(f"{path}: unreadable ({exc})")
            continue
        writer.add(clip)
        imported[path.stem] = name
        modality_sets.append(set(clip.modalities))
        result.clips += 1
        result.frames += clip.num_frames
    require_some(result, src, "NTU skeleton files")

    ids = sorted(imported)
    performer = {c: imported[c].performer for c in ids}
    for split, in_train in (("cross_subject", lambda n: n.performer in CROSS_SUBJECT_TRAIN),
                            ("cross_view", lambda n: n.camera in CROSS_VIEW_TRAIN)):
        train = [c for c in ids if in_train(imported[c])]
        train, val = carve_validation(train, performer)
        writer.write_split(split, {"train": train, "val": val,
                                   "test": [c for c in ids if not in_train(imported[c])]})
    common = set.intersection(*modality_sets)
    writer.meta = {
        "source": "ntu",
        "fps": fps,
        "modalities": [m for m in ("rgb", "depth", "skeleton") if m in common],
        "skeleton_layout": "kinect_v2_25",
        "skeleton_frame": "Kinect v2 camera space (x left, y up, z forward), metres",
        "default_split": "cross_subject",
        "task": "early_recognition",
        "image_width": image_width,
        "notes": ("one action label per video: the task is early recognition; skeletons = every body "
                  "(T, P, 25, 3), skeleton = the body with the largest joint motion; depth/rgb resized to "
                  "image_width (aspect kept; depth nearest-neighbour) and aligned to the skeleton frames by "
                  "nearest index when the counts differ; val = training clips of the highest-numbered "
                  "training performers (10% of them, at least 1, e.g. 35 and 38 on the full dataset); "
                  "modalities lists what every clip has"),
    }
    writer.finish()
    result.splits = ["cross_subject", "cross_view"]
    return result
