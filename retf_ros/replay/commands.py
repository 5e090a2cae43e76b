"""`retf bag export|info|play|record|eval` and `retf demo` (registered by retf_ros/cli.py).

Heavy imports (torch, rosbags, rclpy) happen inside the command functions. `bag play` and
`bag record` run the rclpy player/recorder in this process with the DDS environment the user
has (a robot's network); tests and the demo start them with the loopback environment.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from retf_ros.bags.distros import DISTROS
from retf_ros.bags.player import add_distro_argument, build_parser as player_parser, play
from retf_ros.bags.recorder import build_parser as recorder_parser, record
from retf_ros.cli import add_command
from retf_ros.errors import RetfError


def register(subparsers: argparse._SubParsersAction) -> None:
    bag = subparsers.add_parser("bag", help="ROS 2 bags (MCAP): export clips, play, record, evaluate",
                                description="ROS 2 bags in MCAP storage, readable by `ros2 bag`, Foxglove "
                                            "and PlotJuggler (layout: docs/replay.md).")
    actions = bag.add_subparsers(dest="bag_command", metavar="ACTION")
    bag.set_defaults(func=lambda args: _usage(bag))
    _export_options(add_command(actions, run_export, "export",
                                help="clip store -> bag with camera, skeleton and ground-truth topics"))
    _info_options(add_command(actions, run_info, "info", help="topics, types, counts and duration of a bag"))
    play = player_parser(add_command(
        actions, run_play, "play", help="publish a bag through DDS with its original stamps, paced by bag time",
        description="Publish a bag's messages as recorded (raw CDR, original header stamps), paced by bag time. "
                    "Put ROS arguments (remapping, namespace) after --ros-args."))
    _add_ros_args(play, "arguments for rclpy (e.g. -r __ns:=/robot)")
    record = recorder_parser(add_command(
        actions, run_record, "record", help="record topics to an MCAP bag (raw messages, receive time as log time)",
        description="Subscribe to TOPICs (type and QoS taken from their publishers) and write what arrives to "
                    "an MCAP bag until Ctrl-C, --duration or --max-messages."))
    _add_ros_args(record, "arguments for rclpy")
    _eval_options(add_command(
        actions, run_eval, "eval",
        help="replay a bag through the anticipation runtime and report accuracy, ranks and latency",
        description="Offline (default): the node's runtime on the bag's messages, no DDS, faster than real "
                    "time. --live: the real anticipation_node and the bag player over DDS (loopback). "
                    "Writes report.json and report.html (with plots) into --report."))
    _demo_options(add_command(
        subparsers, run_demo, "demo",
        help="replay a synthetic sample bag to the node, print anticipations live, write a report",
        description="Generate (or reuse) a synthetic sample bag, start anticipation_node with "
                    "config/anticipation.yaml and the shipped checkpoint, replay the bag through DDS on "
                    "loopback, print each anticipation, then replay it offline and write a report."))


def _export_options(export: argparse.ArgumentParser) -> None:
    export.add_argument("clipstore", type=Path, metavar="CLIPSTORE")
    export.add_argument("--out", type=Path, required=True, help="bag directory to create")
    export.add_argument("--split", default=None, help="split name (default: the store's default split)")
    export.add_argument("--part", default="test", choices=("train", "val", "test"), help="split part (default test)")
    export.add_argument("--clips", nargs="+", default=None, metavar="ID", help="export these clips instead")
    export.add_argument("--max-clips", type=int, default=None, metavar="N", help="at most N clips")
    export.add_argument("--compressed", nargs="?", const="jpeg", choices=("jpeg", "png"), default=None,
                        help="RGB as sensor_msgs/CompressedImage on rgb/image_raw/compressed (default jpeg)")
    export.add_argument("--frame-id", default=None, help="header frame_id (default camera_color_optical_frame)")
    export.add_argument("--clip-gap", type=float, default=None, metavar="S",
                        help="silence between clips in seconds (default 10: longer than a model window)")
    export.add_argument("--distro", default=None, metavar="DISTRO",
                        help=f"write the messages in this ROS 2 distro's ({'|'.join(DISTROS)}) definitions (default: the running distro's)")


def _info_options(info: argparse.ArgumentParser) -> None:
    info.add_argument("bag", type=Path, metavar="BAG")
    add_distro_argument(info)


def _add_ros_args(parser: argparse.ArgumentParser, help: str) -> None:
    """Of an action that runs an rclpy process (the bag player or recorder) in this one:
    whatever follows --ros-args goes to rclpy."""
    parser.add_argument("--ros-args", nargs=argparse.REMAINDER, default=[], dest="ros_args", help=help)


def _eval_options(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("bag", type=Path, metavar="BAG")
    evaluate.add_argument("--checkpoint", type=Path, required=True,
                          help="checkpoint: run directory, NAME, NAME.safetensors or NAME.json")
    evaluate.add_argument("--report", type=Path, required=True, metavar="DIR", help="report directory")
    evaluate.add_argument("--live", action="store_true", help="also replay through DDS to anticipation_node")
    evaluate.add_argument("--no-offline", action="store_true", help="skip the offline run (with --live)")
    evaluate.add_argument("--params-file", type=Path, default=None,
                          help="node parameter file (default config/anticipation.yaml when present)")
    evaluate.add_argument("--device", default="cpu", help="auto | cpu | cuda | cuda:N (default cpu)")
    evaluate.add_argument("--threads", type=int, default=1,
                          help="torch threads of the offline run and the node (default 1: batch-1 streaming "
                               "gains nothing from more on a busy machine)")
    evaluate.add_argument("--rate", type=float, default=1.0, help="live playback speed (default 1.0)")
    for modality, default in (("rgb", "rgb/image_raw"), ("depth", "depth/image_raw"), ("skeleton", "skeleton"),
                              ("ground-truth", "ground_truth/action")):
        evaluate.add_argument(f"--{modality}-topic", default=default, metavar="TOPIC",
                              help=f"the bag's {modality.replace('-', ' ')} topic (default {default})")
    add_distro_argument(evaluate)
    evaluate.add_argument("--domain-id", type=int, default=None, metavar="N",
                          help="ROS_DOMAIN_ID of the live run (default: random in 60-99; DDS stays on loopback)")


def _demo_options(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--checkpoint", type=Path, default=None, help="checkpoint (default: the shipped demo one)")
    demo.add_argument("--cache", type=Path, default=None, metavar="DIR",
                      help="where the sample bag and reports go (default .cache/demo in the checkout)")
    demo.add_argument("--report", type=Path, default=None, metavar="DIR", help="report directory")
    demo.add_argument("--params-file", type=Path, default=None, help="node parameters (default config/anticipation.yaml)")
    demo.add_argument("--sequences", type=int, default=None, help="synthetic sequences in the sample bag (default 3)")
    demo.add_argument("--quick", action="store_true", help="one short sequence (about 10 s): a smoke test")
    demo.add_argument("--no-offline", action="store_true", help="skip the offline comparison run")
    demo.add_argument("--rate", type=float, default=1.0, help="playback speed (default 1.0)")
    demo.add_argument("--regenerate", action="store_true", help="regenerate the sample bag")
    demo.add_argument("--domain-id", type=int, default=None, metavar="N",
                      help="ROS_DOMAIN_ID (default: random in 60-99; DDS stays on loopback)")
    demo.add_argument("--pose", action="store_true",
                      help="instead: a real RGB-D frame (--pcd) as a panning camera through pose_node and "
                           "anticipation_node together (the skeleton comes from pose_node)")
    demo.add_argument("--pcd", type=Path, default=None, metavar="FILE",
                      help="with --pose: organised .pcd frame (default five_people.pcd in ../shared/data or "
                           "$RETF_SHARED_DATA)")
    demo.add_argument("--duration", type=float, default=20.0, metavar="S", help="with --pose: seconds to run")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_export(args) -> int:
    # the verb's work: imported when it runs, so `retf --help` stays fast
    from retf_ros.bags.conventions import DEFAULT_CLIP_GAP_S, DEFAULT_FRAME_ID
    from retf_ros.bags.export import ExportOptions, export_clip_store

    options = ExportOptions(split=args.split, part=args.part, clip_ids=tuple(args.clips) if args.clips else None,
                            compressed=args.compressed, frame_id=args.frame_id or DEFAULT_FRAME_ID,
                            clip_gap_s=DEFAULT_CLIP_GAP_S if args.clip_gap is None else args.clip_gap,
                            max_clips=args.max_clips, distro=args.distro)
    summary = export_clip_store(args.clipstore, args.out, options)
    print(f"wrote {summary.path}: {len(summary.clips)} clips, {summary.frames} frames, {summary.messages} messages, "
          f"{summary.duration_s:.1f} s; topics {', '.join(summary.topics)}")
    if summary.skipped_modalities:
        print(f"the clip store has no {', '.join(summary.skipped_modalities)}: not in the bag")
    return 0


def run_info(args) -> int:
    # the verb's work: imported when it runs, so `retf --help` stays fast
    from retf_ros.bags.bagio import BagReader

    reader = BagReader(args.bag, distro=args.distro)
    summary = reader.summary
    for warning in summary.warnings:
        print(f"warning: {warning}")
    print(f"bag {summary.path}: {summary.message_count} messages, {summary.duration_s:.2f} s")
    version = "" if summary.metadata_version is None else f", rosbag2 metadata version {summary.metadata_version}"
    print(f"storage {summary.storage}{version}, {summary.compression or 'not'} compressed"
          + (f", recorded on {summary.ros_distro}" if summary.ros_distro else ""))
    for line in reader.definitions.describe():
        print(line)
    width = max((len(t) for t in summary.topics), default=0)
    for topic, entry in sorted(summary.topics.items()):
        print(f"  {topic:<{width}}  {entry.msgtype:<32} {entry.count:>8}")
    for key, value in sorted(summary.custom_data.items()):
        print(f"  {key}: {value[:100]}")
    return 0


def run_play(args) -> int:
    return play(args, args.ros_args)


def run_record(args) -> int:
    return record(args, args.ros_args)


def run_eval(args) -> int:
    # the verb's work: imported when it runs, so `retf --help` stays fast
    from retf_ros.bags.conventions import ModalityTopics
    from retf_ros.replay.demo import LivePrinter, default_params_file
    from retf_ros.replay.evaluate import EvalRequest, evaluate_bag, summary_lines

    if args.no_offline and not args.live:
        raise RetfError("--no-offline needs --live (otherwise nothing runs)")
    if args.report.exists() and any(args.report.iterdir()):
        raise RetfError(f"--report {args.report} is not empty; choose a new directory")
    request = EvalRequest(bag=args.bag, checkpoint=args.checkpoint, report_dir=args.report,
                          offline=not args.no_offline, live=args.live,
                          params_file=args.params_file or default_params_file(), device=args.device,
                          torch_threads=args.threads, rate=args.rate, domain_id=args.domain_id,
                          topics=ModalityTopics(rgb=args.rgb_topic, depth=args.depth_topic, skeleton=args.skeleton_topic,
                                                ground_truth=args.ground_truth_topic),
                          distro=args.distro)
    outcome = evaluate_bag(request, on_document=LivePrinter() if args.live else None)
    for line in summary_lines(outcome.report):
        print(line)
    print(f"report: {outcome.paths['html']}")
    return 0


def run_demo(args) -> int:
    # the verb's work: imported when it runs, so `retf --help` stays fast
    from retf_ros.replay.demo import FULL_SEQUENCES, DemoOptions, run_demo as demo

    if args.pose:
        # the verb's work: imported when it runs, so `retf --help` stays fast
        from retf_ros.replay.pose_demo import PoseDemoOptions, run_pose_demo

        return run_pose_demo(PoseDemoOptions(pcd=args.pcd, checkpoint=args.checkpoint, params_file=args.params_file,
                                             duration_s=args.duration, domain_id=args.domain_id,
                                             work_dir=args.report))

    return demo(DemoOptions(checkpoint=args.checkpoint, cache_dir=args.cache, report_dir=args.report,
                            params_file=args.params_file, sequences=args.sequences or FULL_SEQUENCES,
                            quick=args.quick, offline=not args.no_offline, rate=args.rate,
                            regenerate=args.regenerate, domain_id=args.domain_id))
