"""`retf synth` and `retf data import` (registered by retf_ros.cli)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from retf_ros.cli import add_command
from retf_ros.errors import RetfError

DEFAULT_SEQUENCES = 60


def register(subparsers) -> None:
    synth = add_command(
        subparsers, run_synth, "synth", help="generate the synthetic RGB-D + skeleton assembly dataset (clip store)",
        description="Generate the synthetic human-robot-collaboration activity dataset "
                    "(docs/data.md), or with --preview draw a contact sheet of one sequence.")
    synth.add_argument("--out", type=Path, metavar="DIR", help="clip store directory to write")
    synth.add_argument("--sequences", type=int, default=DEFAULT_SEQUENCES,
                       help=f"number of sequences (default {DEFAULT_SEQUENCES}; split 70/15/15)")
    synth.add_argument("--seed", type=int, default=0, help="same seed -> identical data (default 0)")
    synth.add_argument("--width", type=int, default=160, help="image width in pixels (default 160)")
    synth.add_argument("--height", type=int, default=120, help="image height in pixels (default 120)")
    synth.add_argument("--fps", type=float, default=15.0, help="frames per second (default 15)")
    synth.add_argument("--min-duration", type=float, default=40.0, help="seconds (default 40)")
    synth.add_argument("--max-duration", type=float, default=70.0, help="seconds (default 70)")
    synth.add_argument("--cycles", type=int, default=None, metavar="N",
                       help="exactly N whole assembly cycles per sequence, overriding the durations "
                            "(clips for the long-term anticipation protocol; the ablation uses 2)")
    synth.add_argument("--workers", type=int, default=0,
                       help="processes rendering in parallel (default 0: one per CPU core, at most 4)")
    synth.add_argument("--preview", type=Path, metavar="OUT.png",
                       help="write a contact sheet of sequence 0 of --seed instead of a dataset")

    data = subparsers.add_parser("data", help="dataset tools")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    imp = add_command(
        data_sub, run_import, "import", help="convert a public dataset or your own ROS 2 bags into a clip store",
        description="Import UTKinect-Action3D, NTU RGB+D or a FUTR/R3D feature folder into a clip "
                    "store (formats: docs/data.md), or with `bag BAG [BAG ...]` one recording of your "
                    "own (its bags merged by time) with its labels (docs/your-data.md).")
    imp.add_argument("dataset", choices=("utkinect", "ntu", "futr", "bag"))
    imp.add_argument("src", type=Path, nargs="+", metavar="SRC", help="dataset folder, or the bags of one recording")
    imp.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="clip store directory to write (bag: an existing store of imported bags is appended to)")
    imp.add_argument("--fps", type=float, default=None,
                     help="frame rate of the source (default: 30 for UTKinect and NTU, 15 for FUTR)")
    imp.add_argument("--image-width", type=int, default=160,
                     help="NTU depth/RGB frames are resized to this width, aspect kept (default 160)")
    _bag_import_arguments(imp.add_argument_group("bag import (dataset bag)"))
    data.set_defaults(func=lambda args: _usage(data))


def _bag_import_arguments(group) -> None:
    # the bag tools: imported only for `retf data import bag`
    from retf_ros.bags.distros import DISTROS

    group.add_argument("--rgb-topic", metavar="TOPIC", help="RGB topic (sensor_msgs/Image or CompressedImage)")
    group.add_argument("--depth-topic", metavar="TOPIC", help="depth topic (sensor_msgs/Image 16UC1 or 32FC1)")
    group.add_argument("--skeleton-topic", metavar="TOPIC", help="skeleton topic (PoseArray or MarkerArray)")
    group.add_argument("--skeleton-type", choices=("pose_array", "marker_array"),
                       help="expected skeleton message type (default: the topic's)")
    group.add_argument("--skeleton-layout", metavar="LAYOUT",
                       help="joint order of PoseArray skeletons (MarkerArrays are Azure Kinect)")
    group.add_argument("--body-id", type=int, default=None, metavar="N",
                       help="MarkerArray body to follow (default: the body nearest the camera)")
    group.add_argument("--per-body", action="store_true",
                       help="every MarkerArray body becomes its own clip (labels per body: CSV column body)")
    group.add_argument("--label-topic", metavar="TOPIC",
                       help="labels: std_msgs integer or String topic; a value holds until the next message")
    group.add_argument("--labels", type=Path, metavar="FILE.csv",
                       help="labels: start_s,end_s,label[,body] segments in bag time (seconds from the start, "
                            "or epoch seconds)")
    group.add_argument("--classes", type=Path, metavar="FILE", help="class names, one per line (line i = id i)")
    group.add_argument("--subject", help="who was recorded (part of the clip ids; kept in meta.json)")
    group.add_argument("--split", default="train", choices=("train", "val", "test"),
                       help="part of the store's split the recording goes to (default train)")
    group.add_argument("--distro", default=None, metavar="DISTRO",
                       help=f"ROS 2 distro ({'|'.join(DISTROS)}) of bags that store no message definitions (see `retf bag info`)")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _prepare_out(out: Path, allow_sources: tuple[str, ...]) -> None:
    """Refuse to write into a non-empty directory that is not a clip store we may replace."""
    if out.exists() and not out.is_dir():
        raise RetfError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        meta = out / "meta.json"
        clips = out / "clips"
        if not (meta.exists() or clips.is_dir()):
            raise RetfError(f"--out {out}: directory is not empty and is not a clip store; refusing to write into it")
        if meta.exists():
            try:
                source = json.loads(meta.read_text()).get("source")
            except ValueError:
                source = None
            if source not in allow_sources:
                raise RetfError(f"--out {out}: holds a clip store of source {source!r}; choose another directory")


def run_synth(args) -> int:
    # the verb's work: imported when it runs, so `retf --help` stays fast
    from retf_ros.data.synthetic.generate import SynthConfig

    if args.width < 32 or args.height < 32:
        raise RetfError(f"--width/--height must be at least 32 pixels, got {args.width}x{args.height}")
    if args.fps <= 0:
        raise RetfError(f"--fps must be positive, got {args.fps}")
    if not 5 <= args.min_duration <= args.max_duration:
        raise RetfError(f"durations must satisfy 5 <= --min-duration <= --max-duration, "
                        f"got {args.min_duration} and {args.max_duration}")
    if args.cycles is not None and args.cycles < 1:
        raise RetfError(f"--cycles must be at least 1, got {args.cycles}")
    config = SynthConfig(width=args.width, height=args.height, fps=args.fps,
                         min_duration_s=args.min_duration, max_duration_s=args.max_duration, cycles=args.cycles)
    if args.preview is not None:
        # the verb's work: imported when it runs, so `retf --help` stays fast
        from retf_ros.data.synthetic.preview import write_preview
        path = write_preview(args.preview, seed=args.seed, config=config)
        print(f"wrote contact sheet {path} (seed {args.seed}, sequence 0)")
        return 0
    if args.out is None:
        raise RetfError("give --out DIR (the clip store to write) or --preview OUT.png")
    if args.sequences < 1:
        raise RetfError(f"--sequences must be at least 1, got {args.sequences}")
    _prepare_out(args.out, allow_sources=("synthetic",))
    # the verb's work: imported when it runs, so `retf --help` stays fast
    from retf_ros.data.synthetic.generate import generate_store
    workers = args.workers if args.workers > 0 else max(1, min(4, os.cpu_count() or 1))
    report = generate_store(args.out, args.sequences, args.seed, config, workers=workers)
    minutes = report.frames / args.fps / 60
    print(f"wrote {args.sequences} sequences ({report.frames} frames, {minutes:.1f} min at {args.fps:g} fps, "
          f"{args.width}x{args.height}) to {args.out} in {report.total_seconds:.1f} s with {workers} process(es)")
    print(f"rendering speed: {report.fps_per_core:.0f} frames/s per core "
          f"({report.frames} frames in {report.render_seconds:.1f} CPU-seconds of generation; "
          f"compression and disk excluded); {report.cpu_seconds:.0f} CPU-seconds in all")
    return 0


def run_import(args) -> int:
    if args.dataset == "bag":
        return run_import_bag(args)
    if len(args.src) != 1:
        raise RetfError(f"{args.dataset} takes one SRC folder, got {len(args.src)}")
    args.src = args.src[0]
    # the verb's work: imported when it runs, so `retf --help` stays fast
    from retf_ros.data import readers

    if not args.src.exists():
        raise RetfError(f"SRC {args.src}: no such file or directory")
    if not args.src.is_dir():
        raise RetfError(f"SRC {args.src}: must be a directory")
    _prepare_out(args.out, allow_sources=(args.dataset,))
    importer = {"utkinect": readers.import_utkinect, "ntu": readers.import_ntu, "futr": readers.import_futr}
    options = {"fps": args.fps}
    if args.dataset == "ntu":
        options["image_width"] = args.image_width
    result = importer[args.dataset](args.src, args.out, **options)
    for problem in result.problems:
        print(f"retf data import: skipped: {problem}", file=sys.stderr)
    print(f"imported {result.clips} clips ({result.frames} frames) from {args.src} into {args.out}; "
          f"splits: {', '.join(result.splits)}; {len(result.problems)} file(s) skipped")
    return 0


def run_import_bag(args) -> int:
    # the verb's work: imported when it runs, so `retf --help` stays fast
    from retf_ros.bags.clip_import import BagImportOptions, import_bags

    for bag in args.src:
        if not bag.exists():
            raise RetfError(f"bag {bag}: no such file or directory")
    options = BagImportOptions(rgb_topic=args.rgb_topic, depth_topic=args.depth_topic, skeleton_topic=args.skeleton_topic,
                               skeleton_type=args.skeleton_type, skeleton_layout=args.skeleton_layout,
                               body_id=args.body_id, per_body=args.per_body, label_topic=args.label_topic,
                               labels_csv=args.labels, classes_file=args.classes, subject=args.subject,
                               split=args.split, distro=args.distro)
    result = import_bags(args.src, args.out, options)
    for note in result.notes:
        print(f"retf data import: warning: {note}", file=sys.stderr)
    print(f"{'appended' if result.appended else 'imported'} {len(result.clips)} clip(s), {result.frames} frames at "
          f"{result.fps:g} fps ({result.unlabelled_frames} unlabelled frames left out) into {args.out} "
          f"(split default, part {args.split}); classes: {', '.join(result.classes)}")
    return 0
