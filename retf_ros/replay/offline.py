"""Offline replay evaluation: the node's runtime on a bag's messages, no DDS, faster than real time.

Frames come from :mod:`retf_ros.bags.frames` (the node's conversions and synchroniser),
predictions from the node's :class:`StreamingPredictor`, and each prediction becomes the same
``retf_ros/anticipation/v1`` document the node publishes, so offline and live runs are scored
by the same code from the same kind of record.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Mapping

import torch
from tqdm import tqdm

from retf_ros.bags.bagio import BagReader
from retf_ros.bags.conventions import ModalityTopics
from retf_ros.bags.frames import frame_sets, resolve_topics, skeleton_reader
from retf_ros.checkpoint import load_checkpoint
from retf_ros.evaluation.bag_scoring import ReplayRun
from retf_ros.runtime.anticipation import anticipation_document
from retf_ros.runtime.frames import InvalidFrame
from retf_ros.runtime.predictor import StreamingPredictor
from retf_ros.runtime.settings import runtime_settings


@dataclass(frozen=True)
class OfflineOptions:
    """``torch_threads`` 1: the streaming model runs batch-1 steps; measured on a shared 2-core
    machine, 1 thread was about 5x faster than 2 (threads spin against the other processes).

    ``params``: anticipation_node's parameters by dotted name (a parameter file's,
    retf_ros.param_file.node_parameters; missing ones take the node's defaults), turned into the
    window, synchroniser, erank and skeleton settings by the node's own translation
    (retf_ros.runtime.settings); the device and threads are the options above."""

    device: str = "cpu"
    torch_threads: int = 1
    params: Mapping[str, object] = field(default_factory=dict)
    topics: ModalityTopics = ModalityTopics()
    distro: str | None = None            # definitions of a bag that stores none (retf_ros.bags.distros)


def run_offline(bag: str | os.PathLike, checkpoint: str | os.PathLike, options: OfflineOptions = OfflineOptions(),
                progress: bool = True) -> ReplayRun:
    """Run the streaming predictor over every synchronised frame of ``bag``."""
    torch.set_num_threads(options.torch_threads)
    reader = BagReader(bag, distro=options.distro)
    loaded = load_checkpoint(checkpoint)
    settings = runtime_settings(options.params, loaded.metadata)
    predictor = StreamingPredictor(loaded, device=options.device, **settings.predictor_options())
    stream = resolve_topics(reader, predictor.modalities, options.topics)
    stream.notes[:0] = reader.warnings
    reference_topic = stream.modality_topics.get(settings.sync.reference, next(iter(stream.modality_topics.values())))
    total = reader.summary.topics[reference_topic].count
    documents, invalid = [], 0
    started = time.perf_counter()
    skeletons = skeleton_reader(reader, stream, predictor.skeleton_layout if "skeleton" in predictor.modalities
                                else None, settings.skeleton_layout, settings.skeleton_body_id)
    frames_iter = frame_sets(reader, stream, settings.sync, skeletons)
    for frames in tqdm(frames_iter, total=total, desc="offline eval", unit="frame", disable=not progress):
        try:
            anticipation = predictor.stream_inference(frames)
        except InvalidFrame as exc:
            invalid += 1
            stream.notes.append(f"frame at {frames.exact_stamp_ns()} ns refused: {exc}")
            continue
        if anticipation is not None:
            documents.append(anticipation_document(anticipation, model_name=loaded.name,
                                                   checkpoint_sha256=loaded.sha256, end_to_end_ms=None))
    wall_s = time.perf_counter() - started
    stats = predictor.stats
    counters = {"frame_sets": stream.frames, "frames_taken": stats.frames_taken,
                "frames_skipped": stats.frames_skipped, "frames_without_modality": stats.frames_without_modality,
                "frames_invalid": invalid, "restarts": stats.restarts, "predictions": stats.predictions,
                **{f"dropped/{key}": n for key, n in stream.drops().items()}}
    return ReplayRun("offline", documents, stream.frames, wall_s, predictor.device_name, counters, stream.notes)
