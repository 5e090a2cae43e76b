"""Offline replay evaluation: the node's runtime on a bag's messages, no DDS, faster than real time.

Frames come from :mod:`retf_ros.bags.frames` (the node's conversions and synchroniser),
predictions from the node's :class:`StreamingPredictor`, and each prediction becomes the same
``retf_ros/anticipation/v1`` document the node publishes, so offline and live runs are scored
by the same code from the same kind of record.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

from retf_ros.bags.bagio import BagReader
from retf_ros.bags.conventions import ModalityTopics
from retf_ros.bags.frames import frame_sets, resolve_topics, skeleton_reader
from retf_ros.checkpoint import load_checkpoint
from retf_ros.errors import RetfError
from retf_ros.evaluation.bag_scoring import ReplayRun
from retf_ros.runtime.anticipation import anticipation_document
from retf_ros.runtime.frames import InvalidFrame
from retf_ros.runtime.health import THRESHOLD_PARAMETERS, ErankThresholds, thresholds_for
from retf_ros.runtime.predictor import StreamingPredictor
from retf_ros.runtime.sync import SyncConfig


@dataclass(frozen=True)
class OfflineOptions:
    """``torch_threads`` 1: the streaming model runs batch-1 steps; measured on a shared 2-core
    machine, 1 thread was about 5x faster than 2 (threads spin against the other processes)."""

    device: str = "cpu"
    torch_threads: int = 1
    stride: int | None = None
    window: int | None = None
    topics: ModalityTopics = ModalityTopics()
    sync: SyncConfig = SyncConfig()
    erank_thresholds: ErankThresholds | None = None  # None: the node's defaults for the checkpoint
    skeleton_layout: str | None = None   # joint order of the bag's PoseArrays (node: skeleton.layout)
    skeleton_body_id: int = -1           # MarkerArray body to follow (node: skeleton.body_id)
    distro: str | None = None            # definitions of a bag that stores none (retf_ros.bags.distros)


def sync_config_from_params(params: dict) -> SyncConfig:
    """The node's synchroniser settings (``sync.*``, ``skeleton.max_age_s``), defaults elsewhere."""
    names = {"sync.slop_s": "slop_s", "sync.max_age_s": "max_age_s", "sync.queue_size": "queue_size",
             "sync.reference": "reference", "sync.policy": "policy", "sync.time_jump_s": "time_jump_s",
             "skeleton.max_age_s": "skeleton_max_age_s"}
    try:
        return SyncConfig(**{field_name: params[key] for key, field_name in names.items() if key in params})
    except (TypeError, ValueError) as exc:
        raise RetfError(f"node parameters: {exc}") from exc


def erank_thresholds_from_params(params: dict, metadata: dict) -> ErankThresholds:
    """The node's erank thresholds for the checkpoint with ``metadata`` under the ``erank.*``
    parameters (a missing one takes the node's default; runtime/health.py ``thresholds_for``)."""
    from retf_ros.ros.params import SPECS

    def param(name: str):
        return params.get(name, SPECS[name].default)

    return thresholds_for(metadata, {name: param(name) for name in THRESHOLD_PARAMETERS},
                          warn_percentile=float(param("erank.warn_percentile")),
                          error_percentile=float(param("erank.error_percentile")),
                          high_percentile=float(param("erank.high_percentile")),
                          min_frames=int(param("erank.min_frames")))


def run_offline(bag: str | os.PathLike, checkpoint: str | os.PathLike, options: OfflineOptions = OfflineOptions(),
                progress: bool = True) -> ReplayRun:
    """Run the streaming predictor over every synchronised frame of ``bag``."""
    torch.set_num_threads(options.torch_threads)
    reader = BagReader(bag, distro=options.distro)
    loaded = load_checkpoint(checkpoint)
    predictor = StreamingPredictor(loaded, device=options.device, window=options.window, stride=options.stride,
                                   erank_thresholds=options.erank_thresholds)
    stream = resolve_topics(reader, predictor.modalities, options.topics)
    stream.notes[:0] = reader.warnings
    reference_topic = stream.modality_topics.get(options.sync.reference, next(iter(stream.modality_topics.values())))
    total = reader.summary.topics[reference_topic].count
    documents, invalid = [], 0
    started = time.perf_counter()
    skeletons = skeleton_reader(reader, stream, predictor.skeleton_layout if "skeleton" in predictor.modalities
                                else None, options.skeleton_layout, options.skeleton_body_id)
    frames_iter = frame_sets(reader, stream, options.sync, skeletons)
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
