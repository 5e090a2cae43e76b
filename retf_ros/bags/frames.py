"""A bag's camera and skeleton messages -> synchronised FrameSets, the node's way, without DDS.

Every message goes through the node's conversions (retf_ros.runtime.messages) and the node's
approximate-time synchroniser (retf_ros.runtime.sync), fed in log-time order with the bag time
standing in for the arrival time (messages with the same log time arrive together). Unlike
the live node, which takes the newest complete set when its worker is free, the offline path
takes every set as soon as it is complete, so it sees every frame: it is the "no frame
dropped" reference the live run is compared with.

Degradation (documented in docs/replay.md):
- a missing modality topic: frames carry that modality as "missing" (the model masks it), and
  the missing topic is listed in :attr:`FrameStream.notes`; with no modality topic at all the
  bag is refused;
- a message that does not convert (bad encoding, wrong joint count) is dropped and counted;
- stamps that jump backwards: a small step back is an out-of-order frame (dropped, counted),
  a large one restarts the stream (synchroniser and predictor reset, as with a looped bag).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby

from rosbags.serde import SerdeError

from retf_ros.errors import DataFormatError
from retf_ros.bags.bagio import BagMessage, BagReader
from retf_ros.bags.conventions import (COMPRESSED_IMAGE_TYPE, MARKER_ARRAY_TYPE, META_LAYOUT,
                                       RGB_COMPRESSED_TOPIC, ModalityTopics, bare_topic)
from retf_ros.runtime import messages as conversions
from retf_ros.runtime.frames import FrameSet
from retf_ros.runtime.sync import ApproximateTimeSynchronizer, SyncConfig

NS = 1_000_000_000


@dataclass(frozen=True)
class GroundTruthFrame:
    stamp_ns: int
    label: str
    class_id: int
    clip: str
    frame: int
    clip_stamp: float | None = None  # the frame's stamp in its clip store (seconds), when recorded


@dataclass
class FrameStream:
    """Where the frames of a bag come from, and what happened on the way."""

    modality_topics: dict[str, str]            # modality -> topic actually read
    notes: list[str] = field(default_factory=list)
    synchroniser: ApproximateTimeSynchronizer | None = None
    frames: int = 0

    def drops(self) -> dict[str, int]:
        return self.synchroniser.drops() if self.synchroniser is not None else {}


def resolve_topics(reader: BagReader, modalities: tuple[str, ...], topics: ModalityTopics) -> FrameStream:
    """Pick the topic of each wanted modality present in the bag (rgb: raw, else compressed)."""
    available = reader.summary.topics
    chosen: dict[str, str] = {}
    notes: list[str] = []
    for modality in modalities:
        candidates = [bare_topic(topics.by_modality()[modality])]
        if modality == "rgb":
            candidates.append(RGB_COMPRESSED_TOPIC)
        found = next((t for t in candidates if t in available), None)
        if found is None:
            notes.append(f"bag has no {' or '.join(candidates)}: {modality} is missing in every frame")
        else:
            chosen[modality] = found
    if not chosen:
        raise DataFormatError(
            f"bag {reader.path} has none of the model's input topics "
            f"({', '.join(topics.by_modality()[m] for m in modalities)}); it has: {', '.join(sorted(available))}")
    return FrameStream(chosen, notes)


def skeleton_reader(reader: BagReader, stream: FrameStream, model_layout: str | None, input_layout: str | None,
                    body_id: int = -1) -> conversions.SkeletonReader | None:
    """The node's skeleton conversion for this bag: MarkerArray or PoseArray by the topic's type;
    the PoseArray joint order is ``input_layout`` (the node's ``skeleton.layout``), else the one the
    bag's metadata records, else the model's."""
    topic = stream.modality_topics.get("skeleton")
    if topic is None or model_layout is None:
        return None
    kind = "marker_array" if reader.summary.topics[topic].msgtype == MARKER_ARRAY_TYPE else "pose_array"
    recorded = reader.summary.custom_data.get(META_LAYOUT)
    layout = input_layout or (json.loads(recorded) if recorded else None) or model_layout
    try:
        return conversions.SkeletonReader(kind, layout, model_layout, body_id)
    except ValueError as exc:
        raise DataFormatError(f"bag {reader.path}: skeleton on {topic}: {exc}") from None


def _convert(reader: BagReader, message: BagMessage, modality: str, skeletons: conversions.SkeletonReader | None):
    msg = reader.deserialize(message)
    if modality == "skeleton":
        array = skeletons.convert(msg)
    elif message.msgtype == COMPRESSED_IMAGE_TYPE:
        array = conversions.compressed_image_to_array(msg)
    else:
        array = conversions.image_to_array(msg)
    return conversions.stamp_nanoseconds(msg), array, conversions.frame_id(msg)


def frame_sets(reader: BagReader, stream: FrameStream, sync_config: SyncConfig,
               skeletons: conversions.SkeletonReader | None) -> Iterator[FrameSet]:
    """FrameSets of the bag in stamp order (see the module docstring)."""
    by_topic = {topic: modality for modality, topic in stream.modality_topics.items()}
    config = SyncConfig(**{**sync_config.__dict__, "modalities": tuple(stream.modality_topics),
                           "reference": sync_config.reference if sync_config.reference in stream.modality_topics
                           else next(iter(stream.modality_topics))})
    sync = ApproximateTimeSynchronizer(config)
    stream.synchroniser = sync
    now = 0.0
    for log_ns, group in groupby(reader.messages(by_topic), key=lambda m: m.log_ns):
        # Messages logged at the same instant arrive together: all of them are stored before
        # the synchroniser is asked for a set, whatever their order in the file.
        now = log_ns / NS
        added = False
        for message in group:
            added |= _add(reader, sync, stream, message, by_topic[message.topic], skeletons, now)
        if added:
            frames = sync.take(now)
            if frames is not None:
                stream.frames += 1
                yield frames
    # The last reference frame may wait for partners that will never come: let time pass.
    frames = sync.take(now + 2 * config.max_age_s)
    if frames is not None:
        stream.frames += 1
        yield frames


def _add(reader: BagReader, sync: ApproximateTimeSynchronizer, stream: FrameStream, message: BagMessage,
         modality: str, skeletons: conversions.SkeletonReader | None, now: float) -> bool:
    """Convert one message and store it in the synchroniser; False when it was dropped (counted)."""
    try:
        stamp_ns, array, frame_id = _convert(reader, message, modality, skeletons)
    except conversions.InvalidMessage as exc:
        sync.count_drop(modality, exc.reason, now)
        return False
    except (ValueError, KeyError, IndexError, AssertionError, SerdeError) as exc:  # CDR that does not deserialise
        sync.count_drop(modality, "deserialize", now)
        stream.notes.append(f"{message.topic} at {message.log_ns}: cannot deserialise ({exc})")
        return False
    return sync.add(modality, stamp_ns, array, frame_id, now)


def ground_truth(reader: BagReader, topic: str) -> list[GroundTruthFrame]:
    """The per-frame ground truth of an exported bag, in stamp order; [] when the bag has none."""
    if bare_topic(topic) not in reader.summary.topics:
        return []
    frames = []
    for message in reader.messages([topic]):
        try:
            doc = json.loads(reader.deserialize(message).data)
            stamp_ns = int(doc["stamp_ns"]) if "stamp_ns" in doc else round(float(doc["stamp"]) * NS)
            clip_stamp = doc.get("clip_stamp")
            frames.append(GroundTruthFrame(stamp_ns, str(doc["label"]), int(doc["class_id"]),
                                           str(doc.get("clip", "")), int(doc.get("frame", -1)),
                                           None if clip_stamp is None else float(clip_stamp)))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataFormatError(f"bag {reader.path}: ground-truth message at {message.log_ns} ns on {topic} "
                                  f"is not the documented JSON {{stamp, label, class_id}}: {exc}") from exc
    frames.sort(key=lambda g: g.stamp_ns)
    return frames
