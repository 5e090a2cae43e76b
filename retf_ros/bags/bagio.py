"""Reading and writing ROS 2 bags (MCAP or sqlite3 storage, zstd-compressed or not) with rosbags:
no rclpy, no rosbag2_py.

Messages travel as raw CDR bytes (rosbags' CDR is byte-identical to rclpy's), so a bag can be
replayed through DDS without re-serialising and a recorded message is stored exactly as received.

A reader decodes messages with the definitions the bag was recorded with and converts those
that differ from the running distro's (:mod:`retf_ros.bags.distros`).

Reading degrades instead of failing where a robot recording is commonly damaged:
- a bag directory without ``metadata.yaml`` (the recorder was killed): its ``.mcap`` file is read;
- a truncated ``.mcap`` (no summary/footer): every complete message before the cut is read with
  a streaming scan, and :attr:`BagReader.warnings` says how far it got.
Anything else (not a bag, unknown storage, unreadable) raises :class:`DataFormatError`.
"""
from __future__ import annotations

import heapq
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from retf_ros.bags.conventions import bare_topic, typestore
from retf_ros.bags.distros import BagDefinitions, bag_definitions, check_distro, distro_typestore, running_distro
from retf_ros.errors import DataFormatError, RetfError

STORAGES = ("mcap", "sqlite3")
COMPRESSIONS = ("file", "message")  # rosbag2's zstd compression modes


_ENCODINGS = {"MSG": "ros2msg", "IDL": "ros2idl"}  # rosbags MessageDefinitionFormat name -> encoding


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
    storage: str = "mcap"
    compression: str | None = None                # "zstd file" / "zstd message"
    metadata_version: int | None = None           # rosbag2 metadata.yaml version
    ros_distro: str | None = None                 # as the metadata records it (rosbag2 from Iron on)
    definitions: dict[str, tuple[str, str]] = field(default_factory=dict)  # msgtype -> (encoding, text)

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e9


class BagWriter:
    """Bag writer (rosbag2 format version 9: a directory with metadata.yaml + one storage file).

    ``storage``: ``mcap`` (default) or ``sqlite3``; ``compression``: None, ``file`` or ``message``
    (zstd, as rosbag2); ``distro``: whose message definitions the messages are serialised with and
    the bag stores (default: the running distro's). Connections are created on first use of a
    topic. Use as a context manager: the bag is finalised on normal exit and on an exception
    alike, so what was written stays readable.
    """

    def __init__(self, path: str | os.PathLike, custom_data: dict[str, str] | None = None, *,
                 storage: str = "mcap", compression: str | None = None, distro: str | None = None):
        # rosbags/mcap: optional (extra "bags"), only needed where bags are read or written
        from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

        self.path = Path(path)
        if self.path.exists():
            raise RetfError(f"{self.path} exists already; remove it or choose another --out")
        if storage not in STORAGES or compression not in (None, *COMPRESSIONS):
            raise RetfError(f"bag storage {storage!r} / compression {compression!r}: "
                            f"expected one of {STORAGES} / {COMPRESSIONS}")
        self._typestore = distro_typestore(check_distro(distro) or running_distro())
        self._writer = Writer(self.path, version=9, storage_plugin=getattr(StoragePlugin, storage.upper()))
        if compression is not None:
            self._writer.set_compression(getattr(CompressionMode, compression.upper()), CompressionFormat.ZSTD)
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
            connection = self._writer.add_connection(topic, msgtype, typestore=self._typestore)
            self._connections[key] = connection
        self._writer.write(connection, int(log_ns), raw)
        self.count += 1

    def write(self, topic: str, msg, log_ns: int) -> None:
        """Serialise a rosbags message object (of the writer's distro) and store it.

        The CDR bytes are zero-padded to a multiple of 4, as DDS delivers a payload to a raw
        subscription: a bag written here then holds the same bytes a recording of it receives.
        """
        msgtype = msg.__msgtype__
        raw = bytes(self._typestore.serialize_cdr(msg, msgtype))
        self.write_raw(topic, msgtype, log_ns, raw + bytes(-len(raw) % 4))


class BagReader:
    """Read a bag directory or a single ``.mcap`` file; topics are reported without leading slash.

    ``distro``: the distro whose definitions to read a bag that stores none with (``--distro``);
    :attr:`definitions` says which were used and what is converted for the running distro.
    """

    def __init__(self, path: str | os.PathLike, distro: str | None = None):
        self.path = Path(path)
        self.warnings: list[str] = []
        if not self.path.exists():
            raise DataFormatError(f"bag {self.path} does not exist")
        self._source = self._resolve_source()
        self._messages_cache: list[BagMessage] | None = None
        self.summary = self._read_summary()
        self.definitions: BagDefinitions = bag_definitions(
            sorted({t.msgtype for t in self.summary.topics.values() if t.msgtype}), self.summary.definitions,
            self.summary.metadata_version, self.summary.ros_distro, distro)
        self.warnings.extend(self.definitions.notes)

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
        # rosbags/mcap: optional (extra "bags"), only needed where bags are read or written
        from rosbags.rosbag2 import Reader
        from rosbags.rosbag2.errors import ReaderError

        try:
            with Reader(self._source) as reader:
                topics = {bare_topic(name): TopicSummary(info.msgtype or "", info.msgcount)
                          for name, info in reader.topics.items()}
                definitions = {c.msgtype: (_ENCODINGS[c.msgdef.format.name], c.msgdef.data)
                               for c in reader.connections if c.msgdef.format.name in _ENCODINGS}
                compression = f"{reader.compression_format} {reader.compression_mode}" if reader.compression_mode else None
                summary = self._summary(topics, reader.start_time, reader.end_time, reader.message_count, definitions)
                summary.compression, summary.ros_distro = compression, reader.ros_distro
                return summary
        except ReaderError as exc:
            if "storage" in str(exc).lower() and "mcap" not in str(self._source):
                raise DataFormatError(f"bag {self.path}: {exc} (MCAP and sqlite3 bags are supported)") from exc
            return self._recover_truncated(str(exc))
        except ImportError as exc:  # a compression module rosbags needs is missing
            raise DataFormatError(f"bag {self.path}: cannot read it ({exc})") from exc

    def _summary(self, topics: dict[str, TopicSummary], start_ns: int, end_ns: int, count: int,
                 definitions: dict[str, tuple[str, str]]) -> BagSummary:
        info = self._metadata()
        storage = info.get("storage_identifier") or ("mcap" if self._mcap_source() else "sqlite3")
        version = info.get("version")
        return BagSummary(str(self.path), topics, start_ns, end_ns, count,
                          {str(k): str(v) for k, v in (info.get("custom_data") or {}).items()}, self.warnings,
                          storage=str(storage), metadata_version=None if version is None else int(version),
                          definitions=definitions)

    def _mcap_source(self) -> bool:
        return self._source.suffix == ".mcap" or any(self._source.glob("*.mcap*"))

    def _metadata(self) -> dict:
        """The rosbag2_bagfile_information of metadata.yaml ({} for a bare .mcap file)."""
        meta = self.path / "metadata.yaml"
        if self._source != self.path or not meta.is_file():
            return {}

        return (yaml.safe_load(meta.read_text()) or {}).get("rosbag2_bagfile_information", {})

    def _mcap_file(self) -> Path:
        if self._source.is_file():
            return self._source
        mcaps = sorted(self._source.glob("*.mcap"))
        if len(mcaps) != 1:
            raise DataFormatError(f"bag {self.path}: expected one .mcap file, found {len(mcaps)}")
        return mcaps[0]

    def _recover_truncated(self, reason: str) -> BagSummary:
        """Stream the records of a damaged MCAP file and keep every complete message."""
        # rosbags/mcap: optional (extra "bags"), only needed where bags are read or written
        from mcap.exceptions import McapError
        from mcap.records import Channel, Message, Schema
        from mcap.stream_reader import StreamReader

        mcap_path = self._mcap_file()
        schemas: dict[int, str] = {}
        definitions: dict[str, tuple[str, str]] = {}
        channels: dict[int, tuple[str, str]] = {}
        messages: list[BagMessage] = []
        complete = True
        try:
            with open(mcap_path, "rb") as stream:
                for record in StreamReader(stream, skip_magic=False).records:
                    if isinstance(record, Schema):
                        schemas[record.id] = record.name
                        if record.encoding in _ENCODINGS.values() and record.data:
                            definitions[record.name] = (record.encoding, bytes(record.data).decode())
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
        return self._summary(topics, messages[0].log_ns, messages[-1].log_ns, len(messages), definitions)

    # --- reading -------------------------------------------------------------------------
    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Messages of the given topics (all when None) in log-time order."""
        wanted = None if topics is None else {bare_topic(t) for t in topics}
        if self._messages_cache is not None:
            yield from (m for m in self._messages_cache if wanted is None or m.topic in wanted)
            return
        # rosbags/mcap: optional (extra "bags"), only needed where bags are read or written
        from rosbags.rosbag2 import Reader

        with Reader(self._source) as reader:
            connections = [c for c in reader.connections if wanted is None or bare_topic(c.topic) in wanted]
            if not connections:
                return
            for connection, log_ns, raw in reader.messages(connections):  # log-time order
                yield BagMessage(bare_topic(connection.topic), connection.msgtype, log_ns, bytes(raw))

    def deserialize(self, message: BagMessage):
        """The rosbags message object of a stored message, in the running distro's definition
        (fields as in rclpy's messages; converted when the bag's definition differs)."""
        return self.definitions.deserialize(message.raw, message.msgtype)

    def converted(self, message: BagMessage) -> BagMessage:
        """The message with its CDR bytes in the running distro's definition (itself when equal)."""
        if message.msgtype not in self.definitions.needs_conversion:
            return message
        return BagMessage(message.topic, message.msgtype, message.log_ns,
                          self.definitions.target_raw(message.raw, message.msgtype))

    def require_topics(self, topics: Iterable[str]) -> None:
        missing = [t for t in topics if bare_topic(t) not in self.summary.topics]
        if missing:
            raise DataFormatError(
                f"bag {self.path} has no topic {', '.join(missing)}; it has: {', '.join(sorted(self.summary.topics))}")


class BagSet:
    """Several bags of one recording read as one (a camera bag and a label bag recorded side by
    side): the reading interface of :class:`BagReader`, messages of all bags merged by log time
    and already in the running distro's definitions (each bag converted with its own)."""

    def __init__(self, paths: Iterable[str | os.PathLike], distro: str | None = None):
        self.readers = [BagReader(p, distro=distro) for p in paths]
        if not self.readers:
            raise DataFormatError("no bag given")
        self.path = ", ".join(str(r.path) for r in self.readers)
        self.warnings = [w for r in self.readers for w in r.warnings]
        topics: dict[str, TopicSummary] = {}
        for reader in self.readers:
            for name, entry in reader.summary.topics.items():
                known = topics.setdefault(name, TopicSummary(entry.msgtype, 0))
                if known.msgtype != entry.msgtype:
                    raise DataFormatError(f"topic {name} has type {known.msgtype} in one bag and {entry.msgtype} "
                                          f"in {reader.path}")
                known.count += entry.count
        summaries = [r.summary for r in self.readers]
        custom = {k: v for s in summaries for k, v in s.custom_data.items()}
        self.summary = BagSummary(self.path, topics, min(s.start_ns for s in summaries),
                                  max(s.end_ns for s in summaries), sum(s.message_count for s in summaries),
                                  custom, self.warnings)

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        wanted = None if topics is None else list(topics)
        streams = [map(reader.converted, reader.messages(wanted)) for reader in self.readers]
        yield from heapq.merge(*streams, key=lambda m: m.log_ns)

    def deserialize(self, message: BagMessage):
        """A message from :meth:`messages` (already in the running distro's definitions)."""
        return typestore().deserialize_cdr(message.raw, message.msgtype)

    def require_topics(self, topics: Iterable[str]) -> None:
        missing = [t for t in topics if bare_topic(t) not in self.summary.topics]
        if missing:
            raise DataFormatError(f"bag(s) {self.path} have no topic {', '.join(missing)}; they have: "
                                  f"{', '.join(sorted(self.summary.topics))}")
