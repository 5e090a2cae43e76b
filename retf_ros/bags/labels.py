"""Per-frame activity labels of a recording: from a label topic, a CSV of segments, and class names.

- A label topic (std_msgs integer types or String): a value holds from its log time until the
  next message.
- A CSV (``start_s,end_s,label[,body]``, optional header line): segments in bag time, sorted and
  not overlapping; seconds below 10^9 count from the recording's first message, larger ones are
  epoch seconds (the bag's log time). ``body`` (optional) gives the segment to one body only.
- ``--classes FILE``: the class names, one per line (line i = class id i) or ``<id> <name>``
  lines as a clip store's mapping.txt; integer labels are ids into it. Without it, integer labels
  name classes ``"0"`` .. ``"max"`` and string labels are their own names (sorted).

Every problem is a :class:`DataFormatError` of one line naming the file / topic and what is wrong.
"""
from __future__ import annotations

import bisect
import csv
from dataclasses import dataclass
from pathlib import Path

from retf_ros.data.clipstore import read_mapping
from retf_ros.errors import DataFormatError

INTEGER_TYPES = tuple(f"std_msgs/msg/{kind}" for kind in
                      ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"))
STRING_TYPE = "std_msgs/msg/String"
EPOCH_THRESHOLD_S = 1e9  # CSV times at or above this are epoch seconds, below it seconds from the start
NS = 1_000_000_000


@dataclass(frozen=True)
class Segment:
    start_ns: int
    end_ns: int | None        # None: until the end of the recording (a label topic's last value)
    value: str | int
    body: int | None = None   # None: every body


class LabelTimeline:
    """Which label holds at a stamp (None when no segment covers it)."""

    def __init__(self, segments: list[Segment], source: str):
        self.segments = sorted(segments, key=lambda s: s.start_ns)  # bodies' segments interleave in a CSV
        self.source = source
        self._starts = [s.start_ns for s in self.segments]

    def values(self) -> list[str | int]:
        return [s.value for s in self.segments]

    def at(self, stamp_ns: int, body: int | None = None) -> str | int | None:
        """The label of ``body`` (None: the body-less segments only) at ``stamp_ns``."""
        for segment in reversed(self.segments[:bisect.bisect_right(self._starts, stamp_ns)]):
            if segment.body is not None and segment.body != body:
                continue
            # Segments of one body never overlap: the latest one started decides.
            return segment.value if segment.end_ns is None or stamp_ns < segment.end_ns else None
        return None


def timeline_from_topic(bags, topic: str) -> LabelTimeline:
    """``bags``: a BagReader or BagSet. Raises DataFormatError for an unsupported type."""
    msgtype = bags.summary.topics[topic.lstrip("/")].msgtype
    if msgtype not in (*INTEGER_TYPES, STRING_TYPE):
        raise DataFormatError(f"label topic {topic} has type {msgtype}; supported: std_msgs integer types "
                              f"(Int8 .. UInt64) and std_msgs/msg/String")
    changes = []
    for message in bags.messages([topic]):
        data = bags.deserialize(message).data
        value = data.strip() if msgtype == STRING_TYPE else int(data)
        if not changes or changes[-1][1] != value:
            changes.append((message.log_ns, value))
    if not changes:
        raise DataFormatError(f"label topic {topic} holds no message")
    segments = [Segment(start, nxt[0] if nxt else None, value)
                for (start, value), nxt in zip(changes, [*changes[1:], None])]
    return LabelTimeline(segments, f"topic {topic}")


def timeline_from_csv(path: Path, origin_ns: int) -> LabelTimeline:
    """Segments of a CSV file (module docstring); ``origin_ns``: the recording's first log time."""
    try:
        rows = list(csv.reader(Path(path).read_text().splitlines()))
    except OSError as exc:
        raise DataFormatError(f"--labels {path}: cannot read it ({exc})") from None
    segments: list[Segment] = []
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and cells[0].lower() in ("start_s", "start"):
            continue
        if len(cells) not in (3, 4):
            raise DataFormatError(f"{path}:{number}: expected start_s,end_s,label[,body], got {len(cells)} fields")
        try:
            start_s, end_s = float(cells[0]), float(cells[1])
            body = int(cells[3]) if len(cells) == 4 and cells[3] else None
        except ValueError:
            raise DataFormatError(f"{path}:{number}: start_s and end_s must be numbers and body an integer") from None
        if not end_s > start_s:
            raise DataFormatError(f"{path}:{number}: segment ends at {end_s} s, not after its start {start_s} s")
        value = int(cells[2]) if cells[2].lstrip("-").isdigit() else cells[2]
        segment = Segment(_ns(start_s, origin_ns), _ns(end_s, origin_ns), value, body)
        earlier = [s for s in segments if s.body is None or body is None or s.body == body]
        if earlier and segment.start_ns < earlier[-1].start_ns:
            raise DataFormatError(f"{path}:{number}: segments are not sorted (starts at {start_s} s, "
                                  "before the previous segment)")
        if earlier and segment.start_ns < earlier[-1].end_ns:
            raise DataFormatError(f"{path}:{number}: segment {start_s}-{end_s} s overlaps the previous one")
        segments.append(segment)
    if not segments:
        raise DataFormatError(f"--labels {path}: no segment (expected lines start_s,end_s,label)")
    return LabelTimeline(segments, f"CSV {path}")


def _ns(seconds: float, origin_ns: int) -> int:
    return round(seconds * NS) + (0 if seconds >= EPOCH_THRESHOLD_S else origin_ns)


def read_classes(path: Path) -> list[str]:
    """Class names of ``--classes``: one per line, or ``<id> <name>`` lines with ids 0..K-1."""
    try:
        lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise DataFormatError(f"--classes {path}: cannot read it ({exc})") from None
    if lines and all(line.split(maxsplit=1)[0].isdigit() and len(line.split(maxsplit=1)) == 2 for line in lines):
        return read_mapping(Path(path))
    if not lines or len(set(lines)) != len(lines):
        raise DataFormatError(f"--classes {path}: expected distinct class names, one per line")
    return lines


def class_names(values: list[str | int], classes: list[str] | None, source: str) -> list[str]:
    """The class list for these label values (module docstring); DataFormatError for a value
    that names no class."""
    if classes is not None:
        for value in values:
            if isinstance(value, int) and not 0 <= value < len(classes):
                raise DataFormatError(f"labels of {source}: class id {value} outside the {len(classes)} classes "
                                      "of --classes")
            if isinstance(value, str) and value not in classes:
                raise DataFormatError(f"labels of {source}: {value!r} is not in --classes ({', '.join(classes)})")
        return list(classes)
    if any(isinstance(v, int) for v in values):
        if any(isinstance(v, str) for v in values) or min(values) < 0:
            raise DataFormatError(f"labels of {source}: mix names and ids, or negative ids; give --classes")
        return [str(i) for i in range(max(values) + 1)]
    return sorted(set(values))


def class_id(value: str | int, classes: list[str]) -> int:
    return value if isinstance(value, int) else classes.index(value)
