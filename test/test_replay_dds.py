"""The bag player and recorder as real rclpy processes over real DDS (loopback, `ros_env`)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np

from retf_ros.bags import messages as bag_messages
from retf_ros.bags.bagio import BagReader, BagWriter
from retf_ros.bags.conventions import header_stamp_ns, typestore

NS = 1_000_000_000
PLAYER = [sys.executable, "-m", "retf_ros.bags.player"]
RECORDER = [sys.executable, "-m", "retf_ros.bags.recorder"]
# The same processes through the `retf` command line.
RETF_PLAY = [sys.executable, "-m", "retf_ros", "bag", "play"]
RETF_RECORD = [sys.executable, "-m", "retf_ros", "bag", "record"]


def _wait_for_line(process: subprocess.Popen, text: str, timeout: float) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if text in line:
            return lines
    raise AssertionError(f"no {text!r} within {timeout} s; output: {lines}")


def test_export_play_record_round_trip_keeps_stamps_and_payloads_bit_identical(replay_bag, ros_env, tmp_path):
    recorded, publish_log = tmp_path / "recorded", tmp_path / "published.jsonl"
    topics = ["rgb/image_raw", "depth/image_raw", "skeleton", "ground_truth/action"]
    recorder = subprocess.Popen(RECORDER + topics + ["/clock", "--out", str(recorded)], env=ros_env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started_ns = time.time_ns()
    try:
        player = subprocess.run(PLAYER + [str(replay_bag), "--clock", "--rate", "2", "--max-idle", "0.5",
                                          "--wait-for-subscribers", "60", "--publish-log", str(publish_log)],
                                env=ros_env, capture_output=True, text=True, timeout=180)
        assert player.returncode == 0, player.stderr
        assert "not acknowledged" not in player.stderr  # the recorder has every message before the player exits
        _wait_for_line(recorder, "recorder ready", 10)
        time.sleep(1.0)  # the last reliable messages in flight
    finally:
        recorder.send_signal(signal.SIGINT)
        output, _ = recorder.communicate(timeout=30)
    assert recorder.returncode == 0, output
    finished_ns = time.time_ns()

    original = list(BagReader(replay_bag).messages())
    copy = BagReader(recorded)
    replayed = [m for m in copy.messages() if m.topic != "clock"]
    assert len(replayed) == len(original)
    for topic in topics:
        sent = [m.raw for m in original if m.topic == topic]
        got = [m.raw for m in replayed if m.topic == topic]
        assert got == sent, f"{topic}: payloads differ after play -> record"
        assert [header_stamp_ns(r, m.msgtype) for r, m in zip(got, (x for x in original if x.topic == topic))] == \
               [header_stamp_ns(m.raw, m.msgtype) for m in original if m.topic == topic]
    assert copy.summary.topics["rgb/image_raw"].msgtype == "sensor_msgs/msg/Image"
    # Log times of the recording are receive times (now), not the bag's stamps.
    assert all(started_ns <= m.log_ns <= finished_ns for m in replayed)

    # /clock carried the bag time of every frame, in order.
    clock = [typestore().deserialize_cdr(m.raw, m.msgtype).clock for m in copy.messages(["/clock"])]
    clock_ns = [c.sec * NS + c.nanosec for c in clock]
    assert clock_ns == sorted({m.log_ns for m in original})

    # Pacing: wall time between publications = bag time / rate, silences capped at --max-idle.
    # Measured over the second half: the first publications (DDS set-up) may start late and
    # the player then catches up with its schedule.
    log = [json.loads(line) for line in publish_log.read_text().splitlines()]
    half = len(log) // 2
    steps = np.diff([m.log_ns for m in original[half:]]) / NS
    expected = float(np.minimum(steps / 2, 0.5).sum())
    elapsed = (log[-1]["wall_ns"] - log[half]["wall_ns"]) / NS
    assert expected * 0.98 <= elapsed <= expected + 2.0, (elapsed, expected)


def test_loop_starts_over_with_the_original_stamps(ros_env, tmp_path):
    bag = tmp_path / "short"
    base = 1_767_225_600 * NS
    image = np.zeros((8, 8, 3), np.uint8)
    with BagWriter(bag) as writer:
        for i in range(5):
            stamp = base + i * NS // 10
            writer.write("rgb/image_raw", bag_messages.image_message(image, "rgb8", stamp, "cam"), stamp)
    publish_log = tmp_path / "published.jsonl"
    player = subprocess.Popen(RETF_PLAY + [str(bag), "--loop", "--publish-log", str(publish_log)], env=ros_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if publish_log.exists() and len(publish_log.read_text().splitlines()) >= 12:
                break
            time.sleep(0.1)
    finally:
        player.send_signal(signal.SIGINT)
        output, _ = player.communicate(timeout=30)
    assert player.returncode == 0, output
    stamps = [json.loads(line)["stamp_ns"] for line in publish_log.read_text().splitlines()][:12]
    one_pass = [base + i * NS // 10 for i in range(5)]
    assert stamps == (one_pass * 3)[:12]


def test_recorder_reports_topics_that_never_appeared(ros_env, tmp_path):
    result = subprocess.run(RETF_RECORD + ["never_published", "--out", str(tmp_path / "empty"), "--duration", "2"],
                            env=ros_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "no publisher appeared on /never_published" in result.stderr
    assert BagReader(tmp_path / "empty").summary.message_count == 0


def test_player_refuses_a_bag_without_the_requested_topic(replay_bag, ros_env):
    result = subprocess.run(PLAYER + [str(replay_bag), "--topics", "no/such/topic"], env=ros_env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "has no topic no/such/topic" in result.stderr
