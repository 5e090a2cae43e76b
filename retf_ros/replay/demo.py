"""`retf demo`: a synthetic sample bag replayed to the real node, printed live, then a report.

Steps: (1) generate or reuse a small synthetic clip store and its bag in the cache directory
(``.cache/demo`` of the checkout when run from one, else the user cache); (2) start
``anticipation_node`` with config/anticipation.yaml and the shipped checkpoint, replay the bag
through DDS on loopback and print one line per anticipation; (3) replay the same bag offline
(no DDS) and (4) write the report comparing both with the bag's ground truth.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import retf_ros
from retf_ros.bags.bagio import BagReader
from retf_ros.bags.export import ExportOptions, export_clip_store
from retf_ros.data.clipstore import ClipStore
from retf_ros.data.synthetic.generate import SynthConfig, generate_store
from retf_ros.errors import RetfError
from retf_ros.evaluation.bag_report import documented_comparison
from retf_ros.replay.evaluate import EvalRequest, evaluate_bag, summary_lines
from retf_ros.runtime.anticipation import document_stamp_ns

DEMO_SEED = 4242  # not a training seed: the demo sequences are new to the checkpoint
# Three unseen sequences (about 4.5 min of activity): with two, the 4 s-ahead accuracy of the
# sample swung by about 5 points around the checkpoint's test figure.
FULL_SEQUENCES = 3
QUICK_DURATION_S = (8.0, 10.0)


@dataclass(frozen=True)
class DemoOptions:
    checkpoint: Path | None = None
    cache_dir: Path | None = None
    report_dir: Path | None = None
    params_file: Path | None = None
    sequences: int = FULL_SEQUENCES
    quick: bool = False
    offline: bool = True
    rate: float = 1.0
    device: str = "cpu"
    regenerate: bool = False
    domain_id: int | None = None


def checkout_root() -> Path | None:
    """The source checkout retf_ros runs from (None for an installed package)."""
    root = Path(retf_ros.__file__).resolve().parents[1]
    return root if (root / ".git").exists() and (root / "setup.py").exists() else None


def default_cache_dir() -> Path:
    root = checkout_root()
    if root is not None:
        return root / ".cache" / "demo"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "retf_ros" / "demo"


def shipped_checkpoint() -> Path:
    return Path(retf_ros.__file__).resolve().parent / "checkpoints" / "demo"


def default_params_file() -> Path | None:
    """config/anticipation.yaml of the checkout, or the installed share/retf_ros/config copy."""
    candidates = []
    root = checkout_root()
    if root is not None:
        candidates.append(root / "config" / "anticipation.yaml")
    candidates.append(Path(sys.prefix) / "share" / "retf_ros" / "config" / "anticipation.yaml")
    return next((p for p in candidates if p.is_file()), None)


def sample_bag(cache_dir: Path, sequences: int, quick: bool, regenerate: bool) -> Path:
    """Generate (once) the synthetic sample clip store and export it to a bag; returns the bag."""
    config = SynthConfig(**({"min_duration_s": QUICK_DURATION_S[0], "max_duration_s": QUICK_DURATION_S[1]}
                            if quick else {}))
    key = hashlib.sha256(json.dumps([DEMO_SEED, sequences, repr(config)]).encode()).hexdigest()[:10]
    folder = cache_dir / f"sample_{'quick' if quick else 'full'}_{key}"
    bag, done = folder / "bag", folder / "complete"
    if done.exists() and not regenerate:
        print(f"retf demo: reusing sample bag {bag}", flush=True)
        return bag
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"retf demo: generating {sequences} synthetic sequence(s) into {folder}", flush=True)
    generate_store(folder / "clips", sequences, DEMO_SEED, config)

    store = ClipStore(folder / "clips")
    export_clip_store(store.root, bag, ExportOptions(clip_ids=tuple(store.all_clip_ids())))
    done.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")
    return bag


class LivePrinter:
    """One readable line per anticipation: time, current action, next actions, effective ranks."""

    def __init__(self, origin_ns: int | None = None, stream=sys.stdout):
        self.origin_ns = origin_ns
        self.stream = stream
        self.count = 0

    def __call__(self, document: dict) -> None:
        stamp_ns = document_stamp_ns(document)
        if self.origin_ns is None:
            self.origin_ns = stamp_ns
        self.count += 1
        current = document["current"]
        upcoming = [a for a in document["actions"] if a["label"] != current["label"]][:2]
        ahead = ", ".join(f"{a['label']} @+{a['start_s']:.1f}s ({a['confidence']:.2f})" for a in upcoming) or "-"
        erank = document["erank"]
        ranks = " ".join(f"{m} {_num(b)}>{_num(erank['after'].get(m))}" for m, b in erank["before"].items())
        missing = [m for m, state in document["modalities"].items() if state != "ok"]
        line = (f"[{(stamp_ns - self.origin_ns) / 1e9:7.2f} s] now {current['label']:<14} ({current['confidence']:.2f})"
                f" | next {ahead} | erank fused {_num(erank['fused'])} {ranks} [{erank['status']}]"
                + (f" | {'/'.join(missing)} not ok" if missing else ""))
        print(line, file=self.stream, flush=True)


def _num(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def run_demo(options: DemoOptions) -> int:
    started = time.perf_counter()
    checkpoint = options.checkpoint or shipped_checkpoint()
    if not (Path(f"{checkpoint}.safetensors").exists() or Path(checkpoint).exists()):
        raise RetfError(f"the demo checkpoint {checkpoint}.safetensors is missing; pass --checkpoint PATH "
                        "(e.g. a run directory from `retf train`)")
    params_file = options.params_file or default_params_file()
    if params_file is None:
        raise RetfError("config/anticipation.yaml not found; pass --params-file")
    cache_dir = options.cache_dir or default_cache_dir()
    bag = sample_bag(cache_dir, 1 if options.quick else options.sequences, options.quick, options.regenerate)
    report_dir = options.report_dir or cache_dir / "report" / time.strftime("%Y%m%d-%H%M%S")
    if report_dir.exists() and any(report_dir.iterdir()):
        raise RetfError(f"report directory {report_dir} is not empty; choose another --report")
    summary = BagReader(bag).summary
    print(f"retf demo: replaying {bag} ({summary.duration_s:.0f} s of bag time, clip silences skipped) to "
          f"anticipation_node with {params_file} and checkpoint {checkpoint}; DDS on loopback only", flush=True)
    printer = LivePrinter(origin_ns=summary.start_ns)
    request = EvalRequest(bag=bag, checkpoint=Path(checkpoint), report_dir=report_dir, offline=options.offline,
                          live=True, params_file=params_file, device=options.device, rate=options.rate,
                          domain_id=options.domain_id, progress=True)
    outcome = evaluate_bag(request, on_document=printer)
    print(f"retf demo: {printer.count} anticipations received live; finished in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    for line in summary_lines(outcome.report):
        print(line, flush=True)
    for line in documented_comparison(outcome.report):
        print(line, flush=True)
    print(f"report: {outcome.paths['html']}", flush=True)
    print(f"        {outcome.paths['json']}", flush=True)
    return 0
