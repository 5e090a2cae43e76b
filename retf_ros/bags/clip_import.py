"""`retf data import bag`: the bags of one recording (+ labels) -> clips of a clip store.

The bags of one call are one recording: their messages are merged by log time (a camera bag
and a label bag recorded side by side), converted from the distro they were recorded with
(retf_ros.bags.distros), and turned into frames exactly as the node does: the node's message
conversions and approximate-time synchroniser (retf_ros.bags.frames). So training sees what the
node sees. Per frame: ``rgb`` (H, W, 3) uint8, ``depth`` (H, W) uint16 mm (0 = no reading),
``skeleton`` (J, 3) float32 m in the recording's joint layout (NaN = missing).

A clip is a run of labelled frames without a gap longer than ``MAX_GAP_S``; frames no label
covers are left out. With ``per_body`` every body of a MarkerArray skeleton becomes its own
clip (with the labels given to it, CSV column ``body``).

Nothing is written half-way: the store is built in a temporary directory next to ``out`` (an
existing store is linked in, clips are never modified) and moved into place at the end; any
error leaves ``out`` as it was. Importing into an existing store appends and first checks that
fps, modalities, joint layout and classes agree.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retf_ros.bags import labels as label_io
from retf_ros.bags.bagio import BagSet
from retf_ros.bags.conventions import MARKER_ARRAY_TYPE, POSE_ARRAY_TYPE, bare_topic
from retf_ros.bags.frames import FrameStream, frame_sets
from retf_ros.data.clipstore import FORMAT, MODALITY_KEYS, PARTS, Clip, read_mapping, write_clip
from retf_ros.errors import DataFormatError
from retf_ros.fusion.skeleton import get_layout
from retf_ros.runtime import messages as conversions
from retf_ros.runtime.sync import SyncConfig

SOURCE = "bag"
SPLIT = "default"
MAX_GAP_S = 1.0          # a longer pause between frames starts a new clip
FPS_TOLERANCE = 0.05     # appended recordings may differ this much (relative) in frame rate
MARKER_LAYOUT = "azure_kinect_32"


@dataclass(frozen=True)
class BagImportOptions:
    rgb_topic: str | None = None
    depth_topic: str | None = None
    skeleton_topic: str | None = None
    skeleton_type: str | None = None       # pose_array | marker_array; None: from the topic's type
    skeleton_layout: str | None = None     # joint order of PoseArrays (MarkerArrays: Azure Kinect)
    body_id: int | None = None             # MarkerArray body to follow; None: the nearest
    per_body: bool = False                 # one clip per MarkerArray body
    label_topic: str | None = None
    labels_csv: Path | None = None
    classes_file: Path | None = None
    subject: str | None = None
    split: str = "train"                   # part of the store's split "default"
    distro: str | None = None


@dataclass
class BagImportResult:
    store: Path
    clips: list[str]
    frames: int
    classes: list[str]
    appended: bool
    fps: float
    unlabelled_frames: int = 0
    notes: list[str] = field(default_factory=list)


def import_bags(bags: list[Path], out: Path, options: BagImportOptions) -> BagImportResult:
    """Import one recording into ``out`` (created, or appended to); see the module docstring."""
    out = Path(out)
    if options.split not in PARTS:
        raise DataFormatError(f"--split {options.split!r}: expected one of {', '.join(PARTS)}")
    existing = _existing_store(out)
    recording = BagSet(bags, distro=options.distro)
    modality_topics = _modality_topics(recording, options)
    timeline = _timeline(recording, options)
    given = label_io.read_classes(options.classes_file) if options.classes_file else None
    classes = label_io.class_names(timeline.values(), given or (existing or {}).get("classes"), timeline.source)
    kind, layout = _skeleton_kind_and_layout(recording, modality_topics, options)
    _check_compatible(existing, out, tuple(modality_topics), layout, classes, given)

    bodies = _bodies(recording, modality_topics["skeleton"]) if options.per_body else [options.body_id]
    clips, unlabelled, frame_ids = [], 0, set()
    for body in bodies:
        frames = _frames(recording, modality_topics, kind, layout, body)
        frame_ids.update(f for f, *_ in frames)
        runs, dropped = _labelled_runs(frames, timeline, classes, None if body is None else body)
        unlabelled += dropped
        stem = _clip_stem(bags[0], options.subject, body if options.per_body else None)
        clips += [(f"{stem}-{n:02d}", run) for n, run in enumerate(runs)]
    if not clips:
        raise DataFormatError(f"no labelled frame in {recording.path}: the labels of {timeline.source} cover "
                              "none of the synchronised frames (check the label times against the bag's)")
    fps = _fps([run for _, run in clips])
    _check_fps(existing, out, fps)
    taken = set(existing["clip_ids"]) if existing else set()
    if clash := sorted(taken & {clip_id for clip_id, _ in clips}):
        raise DataFormatError(f"{out} already holds clip(s) {', '.join(clash)}: this recording was imported "
                              "(give another --subject or remove them)")
    meta = _meta(existing, fps, tuple(modality_topics), layout, frame_ids, bags, options, timeline,
                 [clip_id for clip_id, _ in clips])
    _write_store(out, existing, clips, classes, meta, options.split)
    return BagImportResult(out, [c for c, _ in clips], sum(len(run) for _, run in clips), classes,
                           existing is not None, fps, unlabelled, recording.warnings)


# --- what to read ---------------------------------------------------------------------------
def _modality_topics(recording: BagSet, options: BagImportOptions) -> dict[str, str]:
    chosen = {m: bare_topic(t) for m, t in (("rgb", options.rgb_topic), ("depth", options.depth_topic),
                                            ("skeleton", options.skeleton_topic)) if t}
    if not chosen:
        raise DataFormatError("give at least one of --rgb-topic, --depth-topic, --skeleton-topic")
    recording.require_topics([*chosen.values(), *([options.label_topic] if options.label_topic else [])])
    return {m: chosen[m] for m in ("rgb", "depth", "skeleton") if m in chosen}


def _timeline(recording: BagSet, options: BagImportOptions) -> label_io.LabelTimeline:
    if (options.label_topic is None) == (options.labels_csv is None):
        raise DataFormatError("give exactly one of --label-topic and --labels FILE.csv")
    if options.label_topic:
        return label_io.timeline_from_topic(recording, options.label_topic)
    return label_io.timeline_from_csv(options.labels_csv, recording.summary.start_ns)


def _skeleton_kind_and_layout(recording: BagSet, topics: dict[str, str],
                              options: BagImportOptions) -> tuple[str | None, str | None]:
    topic = topics.get("skeleton")
    if topic is None:
        if options.per_body:
            raise DataFormatError("--per-body needs a MarkerArray --skeleton-topic")
        return None, None
    msgtype = recording.summary.topics[topic].msgtype
    kind = {MARKER_ARRAY_TYPE: "marker_array", POSE_ARRAY_TYPE: "pose_array"}.get(msgtype)
    if kind is None or (options.skeleton_type and options.skeleton_type != kind):
        wanted = options.skeleton_type or "pose_array or marker_array"
        raise DataFormatError(f"skeleton topic {topic} has type {msgtype}, expected {wanted}")
    if kind == "marker_array":
        return kind, MARKER_LAYOUT
    if options.per_body:
        raise DataFormatError("--per-body needs a MarkerArray skeleton (a PoseArray holds one body)")
    if options.skeleton_layout is None:
        raise DataFormatError(f"skeleton topic {topic} is a PoseArray: give its joint order with --skeleton-layout")
    return kind, options.skeleton_layout


def _bodies(recording: BagSet, topic: str) -> list[int]:
    found: set[int] = set()
    for message in recording.messages([topic]):
        found.update(conversions.marker_body_ids(recording.deserialize(message)))
    if not found:
        raise DataFormatError(f"skeleton topic {topic} holds no body")
    return sorted(found)


# --- frames and clips -----------------------------------------------------------------------
def _frames(recording: BagSet, topics: dict[str, str], kind: str | None, layout: str | None,
            body: int | None) -> list[tuple]:
    """[(frame_id, stamp_ns, rgb, depth, skeleton)] of every synchronised frame whose images are there."""
    reference = "skeleton" if "skeleton" in topics else next(iter(topics))
    stream = FrameStream(dict(topics))
    skeletons = None
    if kind is not None:
        try:
            skeletons = conversions.SkeletonReader(kind, layout, layout, -1 if body is None else body)
        except ValueError as exc:
            raise DataFormatError(f"--skeleton-layout: {exc}") from None
    frames = []
    for frame in frame_sets(recording, stream, SyncConfig(modalities=tuple(topics), reference=reference), skeletons):
        if any(m != "skeleton" and frame.array(m) is None for m in topics):
            continue  # an image the synchroniser could not pair: the node would mask it, a clip cannot
        skeleton = frame.skeleton
        if "skeleton" in topics and skeleton is None:
            skeleton = np.full((get_layout(layout).num_joints, 3), np.nan, dtype=np.float32)
        depth = None if frame.depth is None else _millimetres(frame.depth)
        frames.append((frame.frame_id, frame.stamp_ns, frame.rgb, depth, skeleton))
    return frames


def _millimetres(depth: np.ndarray) -> np.ndarray:
    """float32 metres (NaN invalid) -> uint16 millimetres (0 invalid), as clip stores hold depth."""
    if depth.dtype == np.uint16:
        return depth
    return np.clip(np.nan_to_num(depth * 1000.0, nan=0.0, posinf=0.0, neginf=0.0).round(), 0, 65535).astype(np.uint16)


def _labelled_runs(frames: list[tuple], timeline: label_io.LabelTimeline, classes: list[str],
                   body: int | None) -> tuple[list[list[tuple]], int]:
    """Runs of consecutive labelled frames (split at unlabelled frames and gaps > MAX_GAP_S);
    each frame gains its class id. Returns (runs, frames left out)."""
    runs: list[list[tuple]] = []
    current: list[tuple] = []
    left_out = 0
    for frame in frames:
        value = timeline.at(frame[1], body)
        if value is None:
            left_out += 1
        gap = bool(current) and frame[1] - current[-1][1] > MAX_GAP_S * label_io.NS
        if value is None or gap:
            if len(current) > 1:
                runs.append(current)
            current = []
        if value is not None:
            current.append((*frame, label_io.class_id(value, classes)))
    if len(current) > 1:
        runs.append(current)
    return runs, left_out


def _fps(runs: list[list[tuple]]) -> float:
    steps = np.concatenate([np.diff([f[1] for f in run]) for run in runs]) / label_io.NS
    return round(float(1.0 / np.median(steps)), 3)


def _clip(clip_id: str, run: list[tuple], modalities: tuple[str, ...]) -> Clip:
    stamps = np.array([f[1] for f in run], dtype=np.int64)
    arrays = {m: np.stack([f[2 + ("rgb", "depth", "skeleton").index(m)] for f in run]) for m in modalities}
    if "skeleton" in arrays:
        arrays["skeleton"] = arrays["skeleton"].astype(np.float32)
    return Clip(clip_id=clip_id, stamps=(stamps - stamps[0]) / label_io.NS,
                labels=np.array([f[5] for f in run], dtype=np.int64), **arrays)


def _clip_stem(first_bag: Path, subject: str | None, body: int | None) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(first_bag).resolve().name)
    return "-".join([*([subject] if subject else []), name, *([f"body{body}"] if body is not None else [])])


# --- the store ------------------------------------------------------------------------------
def _existing_store(out: Path) -> dict | None:
    """meta + classes + clip ids of the store at ``out``; None when ``out`` is new or empty."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return None
    meta_path = out / "meta.json"
    if not out.is_dir() or not meta_path.is_file():
        raise DataFormatError(f"--out {out} exists and is not a clip store; choose a new directory")
    meta = json.loads(meta_path.read_text())
    if meta.get("source") != SOURCE:
        raise DataFormatError(f"--out {out} holds a clip store of source {meta.get('source')!r}, not imported bags; "
                              "choose a new directory")
    return {"meta": meta, "classes": read_mapping(out / "mapping.txt"),
            "clip_ids": sorted(p.stem for p in (out / "clips").glob("*.npz"))}


def _check_compatible(existing: dict | None, out: Path, modalities: tuple[str, ...], layout: str | None,
                      classes: list[str], given: list[str] | None) -> None:
    if existing is None:
        return
    meta = existing["meta"]
    problems = []
    if sorted(meta["modalities"]) != sorted(modalities):
        problems.append(f"modalities {', '.join(modalities)} (store: {', '.join(meta['modalities'])})")
    if meta.get("skeleton_layout") != layout:
        problems.append(f"joint layout {layout} (store: {meta.get('skeleton_layout')})")
    if classes != existing["classes"]:
        problems.append(f"classes {', '.join(classes)} (store: {', '.join(existing['classes'])})"
                        + ("" if given else "; give --classes with the store's list"))
    if problems:
        raise DataFormatError(f"cannot append to {out}: this recording has {'; '.join(problems)}")


def _check_fps(existing: dict | None, out: Path, fps: float) -> None:
    if existing is not None and abs(fps - existing["meta"]["fps"]) > FPS_TOLERANCE * existing["meta"]["fps"]:
        raise DataFormatError(f"cannot append to {out}: this recording runs at {fps:g} fps, "
                              f"the store at {existing['meta']['fps']:g} fps")


def _meta(existing: dict | None, fps: float, modalities: tuple[str, ...], layout: str | None, frame_ids: set[str],
          bags: list[Path], options: BagImportOptions, timeline, clip_ids: list[str]) -> dict:
    recording = {"bags": [str(Path(b).resolve()) for b in bags], "subject": options.subject,
                 "split_part": options.split, "labels": timeline.source, "clips": clip_ids, "fps": fps}
    if existing is not None:
        meta = dict(existing["meta"])
        meta["recordings"] = [*meta.get("recordings", []), recording]
        return meta
    return {"format": FORMAT, "source": SOURCE, "fps": fps,
            "modalities": [m for m in MODALITY_KEYS if m in modalities], "skeleton_layout": layout,
            "skeleton_frame": f"as recorded: {', '.join(sorted(f for f in frame_ids if f)) or 'unknown'} (metres)",
            "default_split": SPLIT, "task": "anticipation", "recordings": [recording],
            "notes": "imported with `retf data import bag` through the node's message conversions and "
                     "synchroniser; frames no label covers are left out"}


def _write_store(out: Path, existing: dict | None, clips: list[tuple[str, list]], classes: list[str], meta: dict,
                 part: str) -> None:
    """Build the new store next to ``out`` and move it into place (``out`` unchanged on any error)."""
    staging = out.parent / f".{out.name}.importing-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        if existing is not None:  # clips are immutable files: link them instead of copying gigabytes
            shutil.copytree(out, staging, copy_function=_link_or_copy)
        (staging / "clips").mkdir(parents=True, exist_ok=True)
        modalities = tuple(m for m in ("rgb", "depth", "skeleton") if m in meta["modalities"])
        for clip_id, run in clips:
            write_clip(staging, _clip(clip_id, run, modalities), num_classes=len(classes))
        split = staging / "splits" / SPLIT
        split.mkdir(parents=True, exist_ok=True)
        for name in PARTS:
            listed = (split / f"{name}.txt").read_text().split() if (split / f"{name}.txt").exists() else []
            listed += [clip_id for clip_id, _ in clips] if name == part else []
            _replace_text(split / f"{name}.txt", "".join(f"{i}\n" for i in listed))
        _replace_text(staging / "mapping.txt", "".join(f"{i} {name}\n" for i, name in enumerate(classes)))
        meta = {**meta, "num_clips": len(list((staging / "clips").glob("*.npz")))}
        _replace_text(staging / "meta.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
        _swap_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _link_or_copy(source: str, target: str) -> None:
    if source.endswith(".npz"):
        os.link(source, target)
    else:
        shutil.copy2(source, target)


def _replace_text(path: Path, text: str) -> None:
    """Write via a new file: a linked file of the existing store is never changed in place."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _swap_into_place(staging: Path, out: Path) -> None:
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(out)
        return
    previous = out.parent / f".{out.name}.previous-{os.getpid()}"
    out.rename(previous)
    staging.rename(out)
    shutil.rmtree(previous)
