"""Bag recorder: raw subscriptions written to an MCAP bag, log time = receive time.

Each topic's type is taken from the ROS graph once a publisher appears; its reliability and
durability follow the publishers' (a reliable subscription would receive nothing from a
best-effort camera driver). Messages are stored as the raw CDR bytes received, so a recording
of a replayed bag holds the replayed bytes unchanged. Stops on SIGINT/SIGTERM, after
``--duration`` seconds or after ``--max-messages``; the bag is always finalised.

Prints ``recording <topic> [<type>]`` per subscribed topic and ``recorder ready`` once every
requested topic is subscribed (a starter process can wait for that line); with ``--echo``,
``echo <topic> <data>`` per std_msgs/String message (the demo prints anticipations from it).
Run as ``retf bag record TOPIC... --out BAG`` or ``python -m retf_ros.bags.recorder``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from retf_ros.bags.bagio import BagWriter
from retf_ros.bags.conventions import STRING_TYPE, message_class, typestore
from retf_ros.bags.player import run_bag_tool


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="bag_recorder", description=__doc__.splitlines()[0])
    parser.add_argument("topics", nargs="+", metavar="TOPIC", help="topics to record (relative names resolve to /NAME)")
    parser.add_argument("--out", type=Path, required=True, help="bag directory to create")
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    parser.add_argument("--max-messages", type=int, default=None, metavar="N", help="stop after N messages in all")
    parser.add_argument("--echo", action="store_true",
                        help="also print each std_msgs/String message as one line 'echo TOPIC DATA' on stdout")
    parser.add_argument("--qos", choices=("auto", "reliable", "best_effort"), default="auto",
                        help="subscription reliability (default auto: follow the publishers)")
    return parser


def _absolute(topic: str) -> str:
    return topic if topic.startswith("/") else "/" + topic


def _qos_for(node, topic: str, choice: str):
    # rclpy: only the running process needs ROS; the CLI builds its parser without it
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    publishers = node.get_publishers_info_by_topic(topic)
    if choice == "auto":
        reliable = bool(publishers) and all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers)
    else:
        reliable = choice == "reliable"
    latched = bool(publishers) and all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in publishers)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def record(args: argparse.Namespace, ros_args: list[str] | None = None) -> int:
    # rclpy: only the running process needs ROS; the CLI builds its parser without it
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from retf_ros.ros.shutdown import until_signalled

    wanted = {_absolute(t) for t in args.topics}
    rclpy.init(args=["bag_recorder", "--ros-args", *ros_args] if ros_args else ["bag_recorder"])
    node = rclpy.create_node("bag_recorder")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    subscriptions = {}
    writer = BagWriter(args.out)
    writer.open()
    started = time.monotonic()

    def store(topic: str, msgtype: str):
        echo = args.echo and msgtype == STRING_TYPE

        def callback(raw: bytes) -> None:
            writer.write_raw(topic, msgtype, time.time_ns(), raw)
            if echo:
                text = typestore().deserialize_cdr(raw, msgtype).data.replace("\n", " ")
                print(f"echo {topic} {text}", flush=True)
        return callback

    try:
        with until_signalled():
            while rclpy.ok():
                pending = wanted - subscriptions.keys()
                if pending:
                    for name, types in node.get_topic_names_and_types():
                        if name in pending and types:
                            if types[0] not in typestore().types:
                                print(f"bag_recorder: warning: {name} has type {types[0]}, unknown to rosbags; not recorded",
                                      file=sys.stderr, flush=True)
                                wanted.discard(name)
                                continue
                            subscriptions[name] = node.create_subscription(
                                message_class(types[0]), name, store(name, types[0]), _qos_for(node, name, args.qos), raw=True)
                            print(f"recording {name} [{types[0]}]", flush=True)
                            if len(subscriptions) == len(wanted):
                                print("recorder ready", flush=True)
                executor.spin_once(timeout_sec=0.05)
                if args.duration is not None and time.monotonic() - started >= args.duration:
                    break
                if args.max_messages is not None and writer.count >= args.max_messages:
                    break
    finally:
        writer.close()
        node.destroy_node()
        rclpy.try_shutdown()
    never = sorted(wanted - subscriptions.keys())
    if never:
        print(f"bag_recorder: warning: no publisher appeared on {', '.join(never)}", file=sys.stderr)
    print(f"bag_recorder: wrote {writer.count} messages to {args.out}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_bag_tool("bag_recorder", build_parser(), record, argv)


if __name__ == "__main__":
    raise SystemExit(main())
