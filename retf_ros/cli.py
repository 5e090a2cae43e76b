"""The `retf` command (also `python -m retf_ros`).

Each package contributes its own subcommands through a ``register(subparsers)`` function in
its ``commands`` module, so this file only assembles them and turns :class:`RetfError` into
one clear line and exit status 2 instead of a traceback. Command modules keep heavy imports
(torch, rclpy) inside the functions they run, so ``retf --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from retf_ros import __version__
from retf_ros.errors import RetfError

COMMAND_MODULES = (
    "retf_ros.data.commands",      # synth, data import
    "retf_ros.training.commands",  # train, eval, ablate
    "retf_ros.replay.commands",    # bag export|play|record|eval, demo
)


def add_command(subparsers: argparse._SubParsersAction, run: Callable[[argparse.Namespace], int], name: str, *,
                help: str, description: str | None = None) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``, to add its options to; :func:`main` calls ``run(args)``."""
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.set_defaults(func=run)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retf",
        description="Multi-modal action anticipation with the Rank-enhancing Token Fuser (RTF).")
    parser.add_argument("--version", action="version", version=f"retf_ros {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except RetfError as exc:
        print(f"retf {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"retf {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
