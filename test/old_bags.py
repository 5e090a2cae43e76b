"""Bags as older ROS 2 distros write them, for the tests of retf_ros.bags.distros.

``write_foxy_bag`` writes what rosbag2 on Foxy writes: a directory with metadata.yaml version 4
and one sqlite3 database (Foxy's schema: no schema table, no message definitions), optionally
zstd-compressed as a whole file (``compression_mode: FILE``, ``bag_0.db3.zstd``).
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import yaml

from retf_ros.bags import messages as bag_messages
from retf_ros.bags.distros import distro_typestore

NS = 1_000_000_000
MARKER_ARRAY = "visualization_msgs/msg/MarkerArray"
INT64 = "std_msgs/msg/Int64"


def write_foxy_bag(path: Path, messages: list[tuple[str, str, int, bytes]], compress: bool = True) -> Path:
    """``messages``: (absolute topic, type, log time ns, CDR bytes) in log-time order."""
    path.mkdir(parents=True)
    database = path / "bag_0.db3"
    topics = list(dict.fromkeys((topic, msgtype) for topic, msgtype, _, _ in messages))
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, "
                   "serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL)")
        db.execute("CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL, "
                   "timestamp INTEGER NOT NULL, data BLOB NOT NULL)")
        db.executemany("INSERT INTO topics VALUES (?, ?, ?, 'cdr', '')",
                       [(i + 1, topic, msgtype) for i, (topic, msgtype) in enumerate(topics)])
        db.executemany("INSERT INTO messages(topic_id, timestamp, data) VALUES (?, ?, ?)",
                       [(topics.index((t, m)) + 1, log_ns, raw) for t, m, log_ns, raw in messages])
    db.close()
    files = [database.name]
    if compress:
        from backports import zstd

        compressed = database.with_name(database.name + ".zstd")
        compressed.write_bytes(zstd.compress(database.read_bytes()))
        database.unlink()
        files = [compressed.name]
    start, end = messages[0][2], messages[-1][2]
    info = {"version": 4, "storage_identifier": "sqlite3", "relative_file_paths": files,
            "duration": {"nanoseconds": end - start}, "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": len(messages),
            "topics_with_message_count": [
                {"topic_metadata": {"name": topic, "type": msgtype, "serialization_format": "cdr",
                                    "offered_qos_profiles": ""},
                 "message_count": sum(1 for t, m, _, _ in messages if (t, m) == (topic, msgtype))}
                for topic, msgtype in topics],
            "compression_format": "zstd" if compress else "", "compression_mode": "FILE" if compress else ""}
    (path / "metadata.yaml").write_text(yaml.safe_dump({"rosbag2_bagfile_information": info}, sort_keys=False))
    return path


def body_joints(frame: int, body: int) -> np.ndarray:
    """(32, 3) metres: a body 1.5 m (body 0) or 2.5 m (body 1) in front of the camera, swaying."""
    rng = np.random.default_rng(body)
    base = rng.normal(0.0, 0.3, size=(32, 3)) + np.array([0.4 * body, 0.0, 1.5 + body])
    return (base + 0.02 * np.sin(frame / 5.0 + np.arange(32))[:, None]).astype(np.float32)


def kinect_messages(frames: int, start_ns: int, fps: float = 20.0, distro: str = "foxy",
                    topic: str = "/body_tracking_data", bodies: int = 2) -> list[tuple[str, str, int, bytes]]:
    """Azure Kinect body tracking as MarkerArrays serialised with ``distro``'s definitions."""
    store = distro_typestore(distro)
    out = []
    for frame in range(frames):
        stamp = start_ns + round(frame * NS / fps)
        msg = bag_messages.marker_array_message({b: body_joints(frame, b) for b in range(bodies)}, stamp,
                                                "depth_camera_link", distro)
        out.append((topic, MARKER_ARRAY, stamp, bytes(store.serialize_cdr(msg, MARKER_ARRAY))))
    return out


def label_messages(labels: list[int], start_ns: int, fps: float = 20.0, topic: str = "/label",
                   distro: str = "foxy") -> list[tuple[str, str, int, bytes]]:
    """std_msgs/Int64 per frame, as a separate label bag records them."""
    store = distro_typestore(distro)
    return [(topic, INT64, start_ns + round(i * NS / fps), bytes(store.serialize_cdr(store.types[INT64](data=int(v)), INT64)))
            for i, v in enumerate(labels)]
