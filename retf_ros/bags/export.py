"""Clip store -> ROS 2 bag (MCAP): `retf bag export`.

The clips of one split part are laid end to end on one timeline: clip k starts
``DEFAULT_CLIP_GAP_S`` after clip k-1 ends, the first at ``DEFAULT_START_EPOCH_S``. Within a
clip the stored stamps keep their spacing exactly (integer nanoseconds). Every modality of a
frame and its ground-truth message share the frame's stamp as header stamp and log time.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from retf_ros.bags import messages as bag_messages
from retf_ros.bags.bagio import BagWriter
from retf_ros.bags.conventions import (DEFAULT_CLIP_GAP_S, DEFAULT_FRAME_ID, DEFAULT_START_EPOCH_S,
                                       META_CLASSES, META_CLIPS, META_FPS, META_LAYOUT, META_SOURCE,
                                       RGB_COMPRESSED_TOPIC, ModalityTopics)
from retf_ros.data.clipstore import ClipStore
from retf_ros.errors import DataFormatError

NS = 1_000_000_000
EXPORTED_MODALITIES = ("rgb", "depth", "skeleton")


@dataclass
class ExportSummary:
    path: Path
    clips: list[str]
    frames: int
    messages: int
    topics: list[str]
    duration_s: float
    skipped_modalities: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ExportOptions:
    """``compressed``: None for raw rgb8 Images, "jpeg" or "png" for CompressedImage; ``distro``:
    whose message definitions the bag stores (None: the running distro's)."""

    split: str | None = None
    part: str = "test"
    clip_ids: tuple[str, ...] | None = None
    compressed: str | None = None
    frame_id: str = DEFAULT_FRAME_ID
    start_epoch_s: int = DEFAULT_START_EPOCH_S
    clip_gap_s: float = DEFAULT_CLIP_GAP_S
    max_clips: int | None = None
    distro: str | None = None


def export_clip_store(store_dir: str | os.PathLike, out: str | os.PathLike,
                      options: ExportOptions = ExportOptions(), progress: bool = True) -> ExportSummary:
    """Write the clips of ``options.part`` of ``options.split`` (or ``options.clip_ids``) to a bag."""
    writer = BagWriter(out, distro=options.distro)  # refuses an existing bag before any work
    store = ClipStore(store_dir)
    clip_ids = list(options.clip_ids) if options.clip_ids else store.clip_ids(options.split, options.part)
    if options.max_clips is not None:
        clip_ids = clip_ids[:options.max_clips]
    if not clip_ids:
        raise DataFormatError(f"{store.root}: split {options.split or store.default_split!r} part "
                              f"{options.part!r} lists no clips to export")
    modalities = [m for m in EXPORTED_MODALITIES if m in store.modalities]
    if not modalities:
        raise DataFormatError(f"{store.root}: no image or skeleton modality to export (has {', '.join(store.modalities)}); "
                              "feature-only stores cannot become camera bags")
    topics = ModalityTopics()
    for key, value in ((META_CLASSES, store.classes), (META_FPS, store.fps), (META_LAYOUT, store.skeleton_layout),
                       (META_SOURCE, str(store.root))):
        writer.set_custom_data(key, json.dumps(value))
    clip_spans: list[dict] = []
    try:
        _write_clips(writer, store, clip_ids, modalities, options, progress, clip_spans)
    except BaseException:
        # A half-written bag looks like a short complete one: leave nothing behind.
        shutil.rmtree(writer.path, ignore_errors=True)
        raise
    frames = sum(span["frames"] for span in clip_spans)
    written_topics = [topics.ground_truth]
    if "rgb" in modalities:
        written_topics.append(RGB_COMPRESSED_TOPIC if options.compressed else topics.rgb)
    written_topics += [getattr(topics, m) for m in modalities if m != "rgb"]
    return ExportSummary(Path(out), clip_ids, frames, writer.count, sorted(written_topics),
                         (clip_spans[-1]["end_ns"] - clip_spans[0]["start_ns"]) / NS,
                         [m for m in EXPORTED_MODALITIES if m not in modalities])


def _write_clips(writer: BagWriter, store, clip_ids: list[str], modalities: list[str], options: ExportOptions,
                 progress: bool, clip_spans: list[dict]) -> None:
    """Write every clip end to end (see the module docstring); appends each clip's span."""
    topics = ModalityTopics()
    cursor_ns = int(options.start_epoch_s) * NS
    with writer:
        for clip_id in tqdm(clip_ids, desc="export", unit="clip", disable=not progress):
            clip = store.load(clip_id, modalities)
            offsets = np.round((clip.stamps - clip.stamps[0]) * NS).astype(np.int64)
            if clip.num_frames > 1 and not (np.diff(offsets) > 0).all():
                raise DataFormatError(f"{store.clip_path(clip_id)}: stamps are not strictly increasing")
            for index in range(clip.num_frames):
                _write_frame(writer, clip, index, cursor_ns + int(offsets[index]), store, topics, options)
            clip_spans.append({"clip": clip_id, "start_ns": cursor_ns, "end_ns": cursor_ns + int(offsets[-1]),
                               "frames": clip.num_frames})
            cursor_ns += int(offsets[-1]) + round((options.clip_gap_s + 1.0 / store.fps) * NS)
        writer.set_custom_data(META_CLIPS, json.dumps(clip_spans))


def _write_frame(writer: BagWriter, clip, index: int, stamp_ns: int, store, topics: ModalityTopics,
                 options: ExportOptions) -> None:
    frame_id = options.frame_id
    # The skeleton goes first: the node's synchroniser holds the newest skeleton not later than
    # the images, so a skeleton published after its images would pair them with the previous one.
    if clip.skeleton is not None:
        writer.write(topics.skeleton, bag_messages.skeleton_message(clip.skeleton[index], stamp_ns, frame_id), stamp_ns)
    if clip.rgb is not None:
        if options.compressed:
            writer.write(RGB_COMPRESSED_TOPIC, bag_messages.compressed_image_message(
                clip.rgb[index], options.compressed, stamp_ns, frame_id), stamp_ns)
        else:
            writer.write(topics.rgb, bag_messages.image_message(clip.rgb[index], "rgb8", stamp_ns, frame_id), stamp_ns)
    if clip.depth is not None:
        writer.write(topics.depth, bag_messages.image_message(clip.depth[index], "16UC1", stamp_ns, frame_id), stamp_ns)
    class_id = int(clip.labels[index])
    writer.write(topics.ground_truth, bag_messages.ground_truth_message(
        stamp_ns, store.classes[class_id], class_id, clip.clip_id, index, float(clip.stamps[index])), stamp_ns)
