"""Reading and writing ROS 2 bags (MCAP storage) with rosbags: no rclpy, no rosbag2_py.

Messages travel as raw CDR bytes (rosbags' CDR is byte-identical to rclpy's), so a bag can be
replayed through DDS without re-serialising and a recorded message is stored exactly as received.

Reading degrades instead of failing where a robot recording is commonly damaged:
- a bag directory without ``metadata.yaml`` (the recorder was killed): its ``.mcap`` file is read;
- a truncated ``.mcap`` (no summary/footer): every complete message before the cut is read with
  a streaming scan, and :attr:`BagReader.warnings` says how far it got.
Anything else (not a bag, unknown storage, unreadable) raises :class:`DataFormatError`.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from retf_ros.errors import DataFormatError, RetfError
from retf_ros.bags.conventions import bare_topic, typestore


@dataclass(frozen=True)
class BagMessage:
    """One stored message: bare topic name, ROS type name, log time (ns) and raw CDR bytes."""

    topic: str
    msgtype: str
    log_ns: int
    raw: bytes


@dataclass
class TopicSummary:
    msgtype: str
    count: int


@dataclass
class BagSummary:
    path: str
    topics: dict[str, TopicSummary]
    start_ns: int
    end_ns: int
    message_count: int
    custom_data: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e9


class BagWriter:
    """MCAP bag writer (rosbag2 format version 9: a directory with metadata.yaml + one .mcap).

    Connections are created on first use of a topic. Use as a context manager: the bag is
    finalised on normal exit and on an exception alike, so what was written stays readable.
    """

    def __init__(self, path: str | os.PathLike, custom_data: dict[str, str] | None = None):
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        if self.path.exists():
            raise RetfError(f"{self.path} exists already; remove it or choose another --out")
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        for key, value in (custom_data or {}).items():
            self._writer.set_custom_data(key, value)
        self._connections: dict[tuple[str, str], object] = {}
        self._open = False
        self.count = 0

    def __enter__(self) -> "BagWriter":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer.open()
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._writer.close()

    def set_custom_data(self, key: str, value: str) -> None:
        """A metadata.yaml custom_data entry (may be set until the bag is closed)."""
        self._writer.set_custom_data(key, value)

    def write_raw(self, topic: str, msgtype: str, log_ns: int, raw: bytes | memoryview) -> None:
        key = (topic, msgtype)
        connection = self._connections.get(key)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self._connections[key] = connection
        self._writer.write(connection, int(log_ns), raw)
        self.count += 1

    def write(self, topic: str, msg, log_ns: int) -> None:
        """Serialise a rosbags message object (from :func:`typestore`) and store it.

        The CDR bytes are zero-padded to a multiple of 4, as DDS delivers a payload to a raw
        subscription: a bag written here then holds the same bytes a recording of it receives.
        """
        msgtype = msg.__msgtype__
        raw = bytes(typestore().serialize_cdr(msg, msgtype))
        self.write_raw(topic, msgtype, log_ns, raw + bytes(-len(raw) % 4))


class BagReader:
    """Read a bag directory or a single ``.mcap`` file; topics are reported without leading slash."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.warnings: list[str] = []
        if not self.path.exists():
            raise DataFormatError(f"bag {self.path} does not exist")
        self._source = self._resolve_source()
        self._messages_cache: list[BagMessage] | None = None
        self.summary = self._read_summary()

    # --- opening -------------------------------------------------------------------------
    def _resolve_source(self) -> Path:
        if self.path.is_file():
            if self.path.suffix != ".mcap":
                raise DataFormatError(f"{self.path} is not a bag: expected a bag directory or a .mcap file")
            return self.path
        if (self.path / "metadata.yaml").is_file():
            return self.path
        mcaps = sorted(self.path.glob("*.mcap"))
        if len(mcaps) == 1:
            self.warnings.append(f"{self.path} has no metadata.yaml (recording not closed?); reading {mcaps[0].name}")
            return mcaps[0]
        raise DataFormatError(f"{self.path} is not a bag: no metadata.yaml and {len(mcaps)} .mcap files")

    def _read_summary(self) -> BagSummary:
        from rosbags.rosbag2 import Reader
        from rosbags.rosbag2.errors import ReaderError

        try:
            with Reader(self._source) as reader:
                topics = {bare_topic(name): TopicSummary(info.msgtype or "", info.msgcount)
                          for name, info in reader.topics.items()}
                custom = self._custom_data()
                return BagSummary(str(self.path), topics, reader.start_time, reader.end_time,
                                  reader.message_count, custom, self.warnings)
        except ReaderError as exc:
            if "storage" in str(exc).lower() and "mcap" not in str(self._source):
                raise DataFormatError(f"bag {self.path}: {exc} (only MCAP bags are supported)") from exc
            return self._recover_truncated(str(exc))

    def _custom_data(self) -> dict[str, str]:
        meta = self.path / "metadata.yaml"
        if self._source != self.path or not meta.is_file():
            return {}
        import yaml

        info = (yaml.safe_load(meta.read_text()) or {}).get("rosbag2_bagfile_information", {})
        return {str(k): str(v) for k, v in (info.get("custom_data") or {}).items()}

    def _mcap_file(self) -> Path:
        if self._source.is_file():
            return self._source
        mcaps = sorted(self._source.glob("*.mcap"))
        if len(mcaps) != 1:
            raise DataFormatError(f"bag {self.path}: expected one .mcap file, found {len(mcaps)}")
        return mcaps[0]

    def _recover_truncated(self, reason: str) -> BagSummary:
        """Stream the records of a damaged MCAP file and keep every complete message."""
        from mcap.exceptions import McapError
        from mcap.records import Channel, Message, Schema
        from mcap.stream_reader import StreamReader

        mcap_path = self._mcap_file()
        schemas: dict[int, str] = {}
        channels: dict[int, tuple[str, str]] = {}
        messages: list[BagMessage] = []
        complete = True
        try:
            with open(mcap_path, "rb") as stream:
                for record in StreamReader(stream, skip_magic=False).records:
                    if isinstance(record, Schema):
                        schemas[record.id] = record.name
                    elif isinstance(record, Channel):
                        channels[record.id] = (bare_topic(record.topic), schemas.get(record.schema_id, ""))
                    elif isinstance(record, Message) and record.channel_id in channels:
                        topic, msgtype = channels[record.channel_id]
                        messages.append(BagMessage(topic, msgtype, record.log_time, bytes(record.data)))
        except (McapError, EOFError, ValueError, OSError) as exc:
            complete = False
            if not messages:
                raise DataFormatError(f"bag {self.path} is unreadable: {reason}; {exc}") from exc
        if not messages:
            raise DataFormatError(f"bag {self.path} is unreadable ({reason}) and holds no complete message")
        messages.sort(key=lambda m: m.log_ns)
        self._messages_cache = messages
        self.warnings.append(
            f"bag {mcap_path} is {'truncated' if not complete else 'damaged'} ({reason}); "
            f"recovered {len(messages)} complete messages up to "
            f"{(messages[-1].log_ns - messages[0].log_ns) / 1e9:.2f} s after its start")
        topics: dict[str, TopicSummary] = {}
        for m in messages:
            entry = topics.setdefault(m.topic, TopicSummary(m.msgtype, 0))
            entry.count += 1
        return BagSummary(str(self.path), topics, messages[0].log_ns, messages[-1].log_ns,
                          len(messages), self._custom_data(), self.warnings)

    # --- reading -------------------------------------------------------------------------
    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Messages of the given topics (all when None) in log-time order."""
        wanted = None if topics is None else {bare_topic(t) for t in topics}
        if self._messages_cache is not None:
            yield from (m for m in self._messages_cache if wanted is None or m.topic in wanted)
            return
        from rosbags.rosbag2 import Reader

        with Reader(self._source) as reader:
            connections = [c for c in reader.connections if wanted is None or bare_topic(c.topic) in wanted]
            if not connections:
                return
            for connection, log_ns, raw in reader.messages(connections):  # log-time order
                yield BagMessage(bare_topic(connection.topic), connection.msgtype, log_ns, bytes(raw))

    @staticmethod
    def deserialize(message: BagMessage):
        """The rosbags message object of a stored message (fields as in rclpy's messages)."""
        return typestore().deserialize_cdr(message.raw, message.msgtype)

    def require_topics(self, topics: Iterable[str]) -> None:
        missing = [t for t in topics if bare_topic(t) not in self.summary.topics]
        if missing:
            raise DataFormatError(
                f"bag {self.path} has no topic {', '.join(missing)}; it has: {', '.join(sorted(self.summary.topics))}")

