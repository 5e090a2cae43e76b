"""Bag player: publishes a bag's messages through DDS as raw CDR bytes, paced by bag time.

Messages keep their original bytes (and so their original header stamps), except those recorded
with another distro's definition of their type: they are converted to the running distro's
(``retf_ros.bags.distros``; ``--distro`` for bags that store no definitions). Publishing waits
until ``(log_time - first_log_time) / rate`` has elapsed on the wall clock. With ``--clock`` the
bag time is published on ``/clock`` before each message that advances it, so nodes running
with ``use_sim_time`` see the recording's time. ``--loop`` starts over at the end (time then
jumps backwards, as with ``ros2 bag play --loop``).

Run as ``retf bag play BAG`` or ``python -m retf_ros.bags.player BAG``; arguments after
``--ros-args`` go to rclpy (remapping, namespace). DDS settings come from the environment:
tests and the demo start this process with ``retf_ros.harness.loopback.loopback_environment``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from retf_ros.bags.bagio import BagReader
from retf_ros.bags.conventions import CLOCK_TOPIC, CLOCK_TYPE, header_stamp_ns, message_class
from retf_ros.bags.distros import DISTROS
from retf_ros.errors import RetfError

DELIVERY_TIMEOUT_S = 5.0  # how long the player waits at the end for subscribers to acknowledge


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="bag_player", description=__doc__.splitlines()[0])
    parser.add_argument("bag", type=Path, help="bag directory or .mcap file")
    add_distro_argument(parser)
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    parser.add_argument("--loop", action="store_true", help="start over at the end until interrupted")
    parser.add_argument("--clock", action="store_true", help="publish the bag time on /clock (use_sim_time)")
    parser.add_argument("--max-idle", type=float, default=None, metavar="S",
                        help="wait at most S seconds between consecutive messages (skips long silences, "
                             "e.g. between the clips of an exported bag; stamps stay unchanged)")
    parser.add_argument("--topics", nargs="+", default=None, metavar="TOPIC", help="play only these topics")
    parser.add_argument("--qos", choices=("reliable", "best_effort"), default="reliable",
                        help="reliability of the publishers (default reliable: delivers to both kinds of subscriber)")
    parser.add_argument("--depth", type=int, default=10, help="publisher history depth (default 10)")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                        help="before playing, wait up to S seconds until every topic has a subscriber")
    parser.add_argument("--publish-log", type=Path, default=None, metavar="FILE",
                        help="write one JSON line per published message: topic, stamp_ns (header), log_ns (bag), "
                             "wall_ns (wall clock just before publishing)")
    return parser


def add_distro_argument(parser: argparse.ArgumentParser) -> None:
    """``--distro``: the definitions of a bag that stores none (retf_ros.bags.distros)."""
    parser.add_argument("--distro", default=None, metavar="DISTRO",
                        help=f"ROS 2 distro ({'|'.join(DISTROS)}) the bag was recorded with, for bags that store "
                             "no message definitions (default: the bag's metadata ros_distro, else foxy for rosbag2 metadata version 4 "
                             "and humble otherwise; bags with definitions use their own)")


def play(args: argparse.Namespace, ros_args: list[str] | None = None) -> int:
    """Run the player until the bag ends (or forever with --loop). Returns an exit status."""
    if args.rate <= 0:
        print("bag_player: --rate must be > 0", file=sys.stderr)
        return 2
    reader = BagReader(args.bag, distro=args.distro)
    for warning in reader.warnings:
        print(f"bag_player: warning: {warning}", file=sys.stderr)
    if reader.definitions.needs_conversion:
        print(f"bag_player: {reader.definitions.describe()[1]}", file=sys.stderr, flush=True)
    topics = sorted(reader.summary.topics) if args.topics is None else [t.lstrip("/") for t in args.topics]
    reader.require_topics(topics)

    # rclpy: only the running process needs ROS; the CLI builds its parser without it
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    from retf_ros.ros.shutdown import until_signalled

    rclpy.init(args=["bag_player", "--ros-args", *ros_args] if ros_args else ["bag_player"])
    node = rclpy.create_node("bag_player")
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=args.depth,
                     reliability=ReliabilityPolicy.RELIABLE if args.qos == "reliable" else ReliabilityPolicy.BEST_EFFORT)
    publishers = {t: node.create_publisher(message_class(reader.summary.topics[t].msgtype), t, qos) for t in topics}
    clock_publisher = node.create_publisher(message_class(CLOCK_TYPE), CLOCK_TOPIC, 10) if args.clock else None
    log = open(args.publish_log, "w") if args.publish_log else None
    published = 0
    started = time.monotonic()
    try:
        with until_signalled():
            every_publisher = dict(publishers)
            if clock_publisher is not None:
                every_publisher[CLOCK_TOPIC] = clock_publisher
            _wait_for_subscribers(node, every_publisher, args.wait_for_subscribers)
            while True:
                published += _play_once(reader, topics, publishers, clock_publisher, args.rate, args.max_idle, log)
                if not args.loop or not rclpy.ok():
                    break
            if rclpy.ok():
                _wait_until_acknowledged(every_publisher, DELIVERY_TIMEOUT_S)
    finally:
        if log is not None:
            log.close()
        node.destroy_node()
        rclpy.try_shutdown()
    print(f"bag_player: published {published} messages in {time.monotonic() - started:.1f} s", flush=True)
    return 0


def _wait_for_subscribers(node, publishers: dict, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while timeout_s > 0 and time.monotonic() < deadline:
        if all(p.get_subscription_count() > 0 for p in publishers.values()):
            # Matching is visible to the publisher slightly before the subscriber's reader is
            # ready for reliable delivery; a short grace keeps the first messages.
            time.sleep(0.3)
            return
        time.sleep(0.05)
    if timeout_s > 0:
        waiting = [t for t, p in publishers.items() if p.get_subscription_count() == 0]
        print(f"bag_player: no subscriber after {timeout_s:.0f} s on {', '.join(waiting)}; playing anyway",
              file=sys.stderr, flush=True)


def _wait_until_acknowledged(publishers: dict, timeout_s: float) -> None:
    """Reliable samples a subscriber has not acknowledged when this process exits are lost with
    the writer (publishing is asynchronous), so without this wait a recorder misses the bag's
    last messages; best-effort publishers return at once."""
    # rclpy: only the running process needs ROS; the CLI builds its parser without it
    from rclpy.duration import Duration

    deadline = time.monotonic() + timeout_s
    unacknowledged = [topic for topic, publisher in publishers.items()
                      if not publisher.wait_for_all_acked(Duration(seconds=max(0.0, deadline - time.monotonic())))]
    if unacknowledged:
        print(f"bag_player: the last messages on {', '.join(unacknowledged)} were not acknowledged "
              f"within {timeout_s:.0f} s", file=sys.stderr, flush=True)


def _play_once(reader: BagReader, topics: list[str], publishers: dict, clock_publisher, rate: float,
               max_idle_s: float | None, log) -> int:
    # rclpy: only the running process needs ROS; the CLI builds its parser without it
    import rclpy

    clock_class = message_class(CLOCK_TYPE) if clock_publisher is not None else None
    previous_log_ns = None
    last_clock_ns = None
    due = time.monotonic()  # wall time at which the current message is due
    count = 0
    for message in reader.messages(topics):
        if not rclpy.ok():
            break
        if previous_log_ns is not None:
            step = max(0, message.log_ns - previous_log_ns) / 1e9 / rate
            due += step if max_idle_s is None else min(step, max_idle_s)
        previous_log_ns = message.log_ns
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if clock_publisher is not None and (last_clock_ns is None or message.log_ns > last_clock_ns):
            clock = clock_class()
            clock.clock.sec, clock.clock.nanosec = divmod(message.log_ns, 1_000_000_000)
            clock_publisher.publish(clock)
            last_clock_ns = message.log_ns
        message = reader.converted(message)
        wall_ns = time.time_ns()  # before the hand-over: a subscriber may get it before publish() returns
        publishers[message.topic].publish(message.raw)
        count += 1
        if log is not None:
            log.write(json.dumps({"topic": message.topic, "stamp_ns": header_stamp_ns(message.raw, message.msgtype),
                                  "log_ns": message.log_ns, "wall_ns": wall_ns}) + "\n")
    return count


def split_ros_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """(own arguments, arguments after --ros-args)."""
    if "--ros-args" in argv:
        index = argv.index("--ros-args")
        return argv[:index], argv[index + 1:]
    return argv, []


def run_bag_tool(prog: str, parser, action, argv: list[str] | None) -> int:
    """Shared entry of the bag player and recorder: own options before ``--ros-args``, ROS
    arguments after; a RetfError becomes one line on stderr and exit status 2."""
    own, ros_args = split_ros_args(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(own)
    try:
        return action(args, ros_args)
    except RetfError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    return run_bag_tool("bag_player", build_parser(), play, argv)


if __name__ == "__main__":
    raise SystemExit(main())
