"""`make bench` / `make gpu-check`: every benchmark section, each printing measured figures and
the machine they ran on."""
from __future__ import annotations

import argparse
import importlib
import sys

import torch

SECTIONS = ("model", "fusion", "runtime", "node", "pose")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retf_ros.bench", description=__doc__)
    parser.add_argument("--gpu", action="store_true", help="run the CUDA checks (fp32/fp16/bf16)")
    parser.add_argument("--only", choices=SECTIONS, nargs="+", help="run only these sections")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.gpu and not torch.cuda.is_available():
        print("gpu-check: no CUDA device is visible to torch on this machine "
              f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); nothing to check here.",
              file=sys.stderr)
        return 3
    for section in args.only or SECTIONS:
        importlib.import_module(f"retf_ros.bench.{section}").run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
