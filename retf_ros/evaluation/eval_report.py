"""`retf eval`: evaluate checkpoints on a split and combine several runs (seeds) into one report.

Report layout (also the JSON written by ``--json``; NaN becomes null)::

    {"moc": {"0.2": {"0.1": pct, ...}, "0.3": {...}},   mean over runs
     "moc_std": {...},                                   std over runs (0 for one run)
     "per_class": {"0.2": {"0.1": {class: pct}}},
     "effective_rank": {"convention", "before": {m}, "after": {m}, "gain": {m}, "fused",
                        "mutual_gain": {"a+b"}, "inactive_channels": {m},
                        "token_statistics": {m: {"token_mean", "token_mean_sd", "token_sd"}}},
     "streaming": {"accuracy": {"1": pct, "2": pct, "4": pct}, ...} or null,
     "branches": {"colour": {"cue", "balanced_accuracy": pct, "windows"}, ...} or null
                 (synthetic stores: branches.py),
     "runs": [{"checkpoint", "sha256", "task", "fps", "anticipation_mode", "moc", "effective_rank",
               "streaming"}, ...],
     "data": {"path", "split", "part", "clips", "fingerprint"},
     "prior": {"moc": {...same shape as "moc"}, "fps", "train_clips"}}   model-free baseline (prior.py)
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from retf_ros.checkpoint import load_checkpoint, save_checkpoint
from retf_ros.data.clipstore import ClipStore, data_fingerprint
from retf_ros.data.synthetic.generate import read_cycle_annotations
from retf_ros.device import select_device
from retf_ros.errors import CheckpointError, RetfError
from retf_ros.evaluation.branches import BranchScore
from retf_ros.evaluation.json_safe import json_ready
from retf_ros.evaluation.moc import format_table
from retf_ros.evaluation.prior_moc import prior_report
from retf_ros.evaluation.protocol import evaluate_moc, per_class_table, task_spec_from_metadata
from retf_ros.evaluation.streaming import evaluate_streaming
from retf_ros.training.prepared import PrepareSpec, PreparedCache
from retf_ros.training.prior import TransitionPrior
from retf_ros.training.trainer import default_cache_dir

STREAM_AHEAD_S = (1.0, 2.0, 4.0)


def resolve_runs(checkpoints: list[str], seeds: list[int] | None) -> list[Path]:
    """``--checkpoint A [B ...]`` plus ``--seeds``: with seeds, each checkpoint is a directory
    whose ``seed_<S>`` runs are evaluated."""
    if not seeds:
        return [Path(c) for c in checkpoints]
    runs = [Path(c) / f"seed_{s}" for c in checkpoints for s in seeds]
    missing = [str(r) for r in runs if not r.is_dir()]
    if missing:
        raise CheckpointError(f"no run directory {', '.join(missing)} (--seeds evaluates CHECKPOINT/seed_<S>)")
    return runs


def _check_compatible(metadata: dict, store, where: str) -> None:
    missing = [m for m in metadata["modalities"] if m not in store.modalities]
    if missing:
        raise RetfError(f"checkpoint {where} needs {', '.join(missing)}, which {store.root} does not have "
                        f"(it has {', '.join(store.modalities)})")
    if list(metadata["classes"]) != list(store.classes):
        raise RetfError(f"checkpoint {where} was trained on classes {metadata['classes']}, "
                        f"{store.root} has {store.classes}")


def evaluate_checkpoint(path: str | Path, store, clip_ids: list[str], device, batch_size: int = 16,
                        cache_dir: str | Path | None = None, streaming: bool = True,
                        stream_stride: int | None = None) -> dict:
    """MoC, per-class accuracy, effective ranks and (stream task) streaming accuracy of one checkpoint."""
    loaded = load_checkpoint(path, device=device)
    metadata = loaded.metadata
    _check_compatible(metadata, store, str(loaded.path))
    spec = task_spec_from_metadata(metadata)
    cache = PreparedCache(store, cache_dir or default_cache_dir(),
                          PrepareSpec.for_model(loaded.model.config, metadata["fps"], store.skeleton_layout))
    for clip_id in tqdm(clip_ids, desc="preparing frames", unit="clip", file=sys.stderr, leave=False):
        cache.ensure(clip_id)
    annotations = read_cycle_annotations(store.root, clip_ids)
    branches = BranchScore(annotations, loaded.classes, metadata["fps"]) if annotations else None
    prior, mode = anticipation_of(metadata)
    with tqdm(total=len(clip_ids) * 2, desc=f"MoC {loaded.path.name}", unit="window", file=sys.stderr,
              leave=False) as bar:
        result = evaluate_moc(loaded.model, spec, cache, clip_ids, device, batch_size, progress=bar.update,
                              branches=branches, prior=prior, mode=mode)
    report = {"checkpoint": str(loaded.path), "sha256": loaded.sha256, "task": spec.task,
              "fps": float(metadata["fps"]), "anticipation_mode": mode,
              "moc": result.moc.table(), "per_class": per_class_table(result.moc, loaded.classes),
              "effective_rank": result.ranks.summary(), "windows": result.samples, "streaming": None,
              "branches": branches.summary() if branches else None}
    # The streaming runtime takes raw frames only; precomputed-feature checkpoints have no stream.
    if streaming and spec.task == "stream" and not loaded.model.config.feature_dims:
        report["streaming"] = streaming_accuracy(loaded, store, clip_ids, device, stream_stride)
    return report


def anticipation_of(metadata: dict):
    """(TransitionPrior or None, mode) recorded by the trainer (metadata ``anticipation``);
    checkpoints from before it anticipate with the network alone."""
    recorded = metadata.get("anticipation") or {}
    if not recorded.get("prior"):
        return None, "network"
    return TransitionPrior.from_dict(recorded["prior"]), recorded.get("mode", "network")


def streaming_accuracy(loaded, store, clip_ids: list[str], device, stride: int | None = None) -> dict:
    """Accuracy of the labels anticipated 1, 2, 4 s ahead when the clips are streamed frame by
    frame through the runtime's StreamingPredictor (what the node does). ``stride``: model frames
    between predictions (None: every frame, the node's default)."""
    result = evaluate_streaming(loaded, store, clip_ids, ahead_s=STREAM_AHEAD_S, device=str(device),
                                stride=stride)
    return result.to_dict()


def _mean_tree(values: list):
    """Element-wise mean of nested dicts of numbers (keys missing in some runs are skipped)."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    if isinstance(present[0], dict):
        keys = list(dict.fromkeys(k for v in present if isinstance(v, dict) for k in v))
        return {k: _mean_tree([v.get(k) for v in present if isinstance(v, dict)]) for k in keys}
    if all(v == present[0] for v in present[1:]):
        return present[0]  # one run, or identical values: keep ints (counts, stride) as they are
    if isinstance(present[0], (int, float)) and not isinstance(present[0], bool):
        finite = [float(v) for v in present if math.isfinite(float(v))]
        return float(np.mean(finite)) if finite else float("nan")
    return present[0]


def _std_tree(values: list):
    present = [v for v in values if v is not None]
    if isinstance(present[0], dict):
        return {k: _std_tree([v.get(k) for v in present]) for k in present[0]}
    finite = [float(v) for v in present if v is not None and math.isfinite(float(v))]
    return float(np.std(finite)) if finite else float("nan")


def combine_runs(reports: list[dict]) -> dict:
    """Mean (and std of the MoC) over runs evaluated on the same data."""
    return {
        "moc": _mean_tree([r["moc"] for r in reports]),
        "moc_std": _std_tree([r["moc"] for r in reports]),
        "per_class": _mean_tree([r["per_class"] for r in reports]),
        "effective_rank": _mean_tree([r["effective_rank"] for r in reports]),
        "streaming": _mean_tree([r["streaming"] for r in reports]),
        "branches": _mean_tree([r.get("branches") for r in reports]),
        "runs": reports,
    }


def evaluate_runs(runs: list[Path], data: str | Path, split: str | None = None, part: str = "test",
                  device: str = "auto", batch_size: int = 16, cache_dir=None, streaming: bool = True,
                  stream_stride: int | None = None) -> dict:
    store = ClipStore(data)
    split_name = split or store.default_split
    clip_ids = store.clip_ids(split_name, part)
    if not clip_ids:
        raise RetfError(f"{store.root}: split {split_name!r} has no {part} clips")
    torch_device = select_device(device)
    reports = [evaluate_checkpoint(run, store, clip_ids, torch_device, batch_size, cache_dir, streaming,
                                   stream_stride) for run in runs]
    combined = combine_runs(reports)
    combined["data"] = {"path": str(store.root), "split": split_name, "part": part, "clips": len(clip_ids),
                        "fingerprint": data_fingerprint(store)}
    # The model-free baseline at the (first) checkpoint's frame rate, on the same clips.
    combined["prior"] = prior_report(store, split_name, part, reports[0]["fps"])
    return combined


def format_report(report: dict) -> str:
    """Human-readable summary printed by `retf eval`."""
    runs = report["runs"]
    title = f"MoC (%) on {report['data']['split']}/{report['data']['part']} ({report['data']['clips']} clips)"
    if len(runs) > 1:
        title += f", mean of {len(runs)} runs"
    lines = [format_table(report["moc"], title)]
    modes = sorted({run.get("anticipation_mode", "network") for run in runs})
    lines.append(f"anticipation mode: {', '.join(modes)} (recorded by `retf train`; network for older checkpoints)")
    prior = report.get("prior")
    if prior:
        lines.append(format_table(prior["moc"], f"Prior MoC (%) (model-free: counts of the {prior['train_clips']} "
                                                f"training clips, observed ground truth; training/prior.py)"))
        lines.append("model - prior, mean over the table: " + _signed(_table_mean(report["moc"]) - _table_mean(prior["moc"])))
    erank = report["effective_rank"]
    if erank:
        lines.append(f"effective rank ({erank['convention']}): fused {erank['fused']:.2f}")
        for m in erank["before"]:
            lines.append(f"  {m:<16} before {erank['before'][m]:7.2f}  after {erank['after'][m]:7.2f}  "
                         f"gain {erank['gain'][m]:+.2f}  inactive channels {erank['inactive_channels'][m]:.1f}")
        for m, stats in (erank.get("token_statistics") or {}).items():
            lines.append(f"  {m:<16} tokens entering the exchange: per-token mean {_fmt(stats['token_mean'])} "
                         f"(sd {_fmt(stats['token_mean_sd'])}), per-token sd {_fmt(stats['token_sd'])}")
        for pair, value in erank["mutual_gain"].items():
            lines.append(f"  mutual gain {pair}: {value:.3f}")
    streaming = report.get("streaming")
    if streaming:
        accuracy = streaming.get("accuracy", {})
        lines.append("streaming accuracy: " + ", ".join(
            f"{k} s ahead " + (f"{v:.2f}%" if _is_finite(v) else "n/a (beyond the horizon)")
            for k, v in accuracy.items()))
    branches = report.get("branches")
    if branches:
        lines.append("cue-decided branches anticipated (balanced accuracy, 50 = guessing): " + ", ".join(
            f"{name} ({b['cue']}) " + (f"{b['balanced_accuracy']:.1f}%" if _is_finite(b["balanced_accuracy"]) else "n/a")
            for name, b in branches.items()))
    return "\n".join(lines)


def _table_mean(moc: dict) -> float:
    values = [v for row in moc.values() for v in row.values() if _is_finite(v)]
    return float(np.mean(values)) if values else float("nan")


def _signed(value: float) -> str:
    return f"{value:+.2f}" if math.isfinite(value) else "n/a"


def _is_finite(value) -> bool:
    return value is not None and math.isfinite(value)


def _fmt(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if _is_finite(value) else "n/a"


def record_in_checkpoint(path: str | Path, report: dict, command: str) -> Path:
    """Store a single-run report's headline figures in the checkpoint's metadata as
    ``metrics.test`` (the weights file is rewritten byte-identical, so its sha256 stays)."""
    loaded = load_checkpoint(path)
    metadata = {k: v for k, v in loaded.metadata.items() if k not in ("format", "model_config", "weights_sha256")}
    streaming = report.get("streaming") or {}
    metrics = dict(metadata.get("metrics") or {})
    metrics["test"] = json_ready({
        "command": command, "data": report["data"], "moc": report["moc"],
        "effective_rank": report["effective_rank"],
        "branches": report.get("branches"),
        "streaming": {key: streaming.get(key) for key in ("accuracy", "moc", "scored", "stride", "fps", "horizon_s")}
        if streaming else None,
    })
    metadata["metrics"] = metrics
    return save_checkpoint(loaded.path.with_suffix(""), loaded.model, metadata)
