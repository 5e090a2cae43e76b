"""What a checkpoint's effective ranks look like on healthy input: the distribution over the
validation split, recorded in its metadata (``erank_distribution``) so that the node's erank
health thresholds mean something for that checkpoint (runtime/health.py,
``thresholds_from_distribution``).

Every validation clip is streamed through a StreamingPredictor exactly as the node runs it (model
fps, window, one prediction per model frame), and each window's report (runtime/health.py:
erank of each modality before / after the exchange, fused erank, mutual gain of each pair,
uncentred) is one sample. ``retf train`` records it for its best checkpoint; ``retf calibrate``
computes it for any checkpoint, records it (``--record``) or measures it under a faulty input
(``--input MODALITY=frozen|noise``) against the recorded thresholds.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
from tqdm import tqdm

from retf_ros.checkpoint import load_checkpoint, save_checkpoint
from retf_ros.data.clipstore import ClipStore, data_fingerprint
from retf_ros.errors import RetfError
from retf_ros.evaluation.json_safe import json_ready
from retf_ros.runtime.clip_frames import clip_frames, skeleton_converter
from retf_ros.runtime.health import (DEFAULT_ERROR_PERCENTILE, DEFAULT_WARN_PERCENTILE, DISTRIBUTION_KEY,
                                     DISTRIBUTION_PERCENTILES, MOVING_PERCENTILE, ErankReport, ErankThresholds, judged,
                                     percentile_key, thresholds_for)
from retf_ros.runtime.perturb import ModalityFault
from retf_ros.runtime.predictor import StreamingPredictor

if TYPE_CHECKING:
    from retf_ros.checkpoint import LoadedCheckpoint
    from retf_ros.runtime.frames import FrameSet


@dataclass
class WindowEranks:
    """The per-window erank reports of one streamed split; ``window``: the predictor's window W,
    ``recent_frames``: how many last tokens the reports' ``recent`` eranks cover."""

    window: int
    recent_frames: int
    reports: list[ErankReport] = field(default_factory=list)
    clips: int = 0

    def values(self) -> dict:
        """{"before": {m: [...]}, "after": {m: [...]}, "fused": [...], "mutual_gain": {pair: [...]},
        "recent": {m: [...]}, "spread": {m: [...]}, "recent_centred": {m: [...]}} over the full
        windows (W frames; a stream's first windows are shorter, their eranks lower by
        construction), per modality those where it was present in every frame; "recent",
        "spread" and "recent_centred" (statistics of a modality's last tokens) over every window
        that has them, "recent_centred" only where the spread is at least its MOVING_PERCENTILE."""
        out: dict = {"before": {}, "after": {}, "fused": [], "mutual_gain": {}, "recent": {}, "spread": {},
                     "recent_centred": {}}
        for report in self.reports:
            for part, field_name in (("recent", "recent"), ("spread", "spread")):
                for m, value in getattr(report, field_name).items():
                    values = out[part].setdefault(m, [])
                    if value is not None:
                        values.append(float(value))
            if report.window_frames < self.window:
                continue
            full = {m for m, n in report.modality_frames.items() if n >= report.window_frames}
            for part in ("before", "after"):
                for m, value in getattr(report, part).items():
                    values = out[part].setdefault(m, [])
                    if value is not None and m in full:
                        values.append(float(value))
            for pair, value in report.mutual_gain.items():
                values = out["mutual_gain"].setdefault(pair, [])
                if value is not None and set(pair.split("+")) <= full:
                    values.append(float(value))
            if report.fused is not None:
                out["fused"].append(float(report.fused))
        for m, spreads in out["spread"].items():
            moving = float(np.percentile(spreads, MOVING_PERCENTILE)) if spreads else 0.0
            out["recent_centred"][m] = [float(r.centred[m]) for r in self.reports
                                        if r.spread.get(m) is not None and r.spread[m] >= moving]
        return out

    def distribution(self) -> dict:
        """Percentiles (``DISTRIBUTION_PERCENTILES``) of every value over the full windows, plus min,
        max and count; ``window``: W, ``windows``: full windows."""
        def summary(values: list[float]) -> dict:
            if not values:
                return {"windows": 0}
            points = np.percentile(np.asarray(values, dtype=np.float64), DISTRIBUTION_PERCENTILES)
            return {"windows": len(values), "min": float(min(values)), "max": float(max(values)),
                    **{percentile_key(p): float(v) for p, v in zip(DISTRIBUTION_PERCENTILES, points)}}

        values = self.values()
        return {"convention": "uncentred", "window": self.window, "windows": len(values["fused"]), "clips": self.clips,
                "recent_frames": self.recent_frames, "recent": {m: summary(v) for m, v in values["recent"].items()},
                "spread": {m: summary(v) for m, v in values["spread"].items()},
                "recent_centred": {m: summary(v) for m, v in values["recent_centred"].items()},
                "before": {m: summary(v) for m, v in values["before"].items()},
                "after": {m: summary(v) for m, v in values["after"].items()},
                "fused": summary(values["fused"]),
                "mutual_gain": {p: summary(v) for p, v in values["mutual_gain"].items()}}

    def statuses(self, thresholds: ErankThresholds) -> dict:
        """{"ok": n, "warn": n, "error": n, "named": {modality or "fused" or pair: windows}}: each
        window's status under ``thresholds`` and which checks raised it (culprits)."""
        reports = [judged(report, thresholds) for report in self.reports]
        counts = Counter(report.status for report in reports)
        named = Counter(culprit for report in reports for culprit in set(report.culprits))
        return {"windows": len(reports), "ok": counts["ok"], "warn": counts["warn"], "error": counts["error"],
                "named": dict(sorted(named.items()))}


def _faulty(frames: Iterable["FrameSet"], faults: list["ModalityFault"]) -> Iterable["FrameSet"]:
    for frame in frames:
        for fault in faults:
            array = frame.array(fault.modality)
            if array is not None:
                setattr(frame, fault.modality, fault.apply(array))
        yield frame


def stream_window_eranks(checkpoint: "LoadedCheckpoint", store: "ClipStore", clip_ids: list[str], *,
                         device: str = "cpu", thresholds: ErankThresholds | None = None,
                         faults: dict[str, str] | None = None, seed: int = 0, progress: bool = True) -> WindowEranks:
    """Stream ``clip_ids`` through a StreamingPredictor (as the node) and keep every window's
    erank report, judged by ``thresholds``. ``faults``: modality -> "frozen" | "noise", applied
    to that modality of every frame from the start of each clip (runtime/perturb.py)."""
    predictor = StreamingPredictor(checkpoint, device=device, erank_thresholds=thresholds)
    usable = [m for m in predictor.modalities if m in store.modalities]
    unknown = sorted(set(faults or {}) - set(usable))
    if unknown:
        raise RetfError(f"cannot apply a fault to {', '.join(unknown)}: the checkpoint streams {', '.join(usable)}")
    convert = skeleton_converter(store.skeleton_layout, predictor.skeleton_layout) if "skeleton" in usable else None
    result = WindowEranks(predictor.window, predictor.erank_thresholds.recent_frames)
    for index, clip_id in enumerate(tqdm(clip_ids, desc="erank windows", unit="clip", file=sys.stderr,
                                         disable=not progress, leave=False)):
        predictor.clear_cache()
        clip = store.load(clip_id, modalities=usable)
        chosen = [ModalityFault(m, kind, seed=seed + index) for m, kind in (faults or {}).items()]
        for anticipation in predictor.stream_many(_faulty(clip_frames(clip, predictor.modalities, convert), chosen)):
            result.reports.append(anticipation.erank)
        result.clips += 1
    predictor.release()
    return result


def record_distribution(path: str | Path, store: "ClipStore", split: str, part: str, command: str,
                        device: str = "cpu", progress: bool = True) -> dict:
    """Compute the checkpoint's erank distribution on ``part`` of ``split`` and store it in its
    metadata under ``erank_distribution`` (the weights file is rewritten byte-identical);
    returns the distribution."""
    loaded = load_checkpoint(path)
    windows = stream_window_eranks(loaded, store, _clip_ids(store, split, part), device=device, progress=progress)
    return _store_distribution(loaded, windows, store, split, part, command)


def _clip_ids(store: "ClipStore", split: str, part: str) -> list[str]:
    clip_ids = store.clip_ids(split, part)
    if not clip_ids:
        raise RetfError(f"{store.root}: split {split!r} has no {part} clips")
    return clip_ids


def _store_distribution(loaded: "LoadedCheckpoint", windows: WindowEranks, store: "ClipStore", split: str,
                        part: str, command: str) -> dict:
    distribution = windows.distribution()
    distribution.update(command=command, data=str(store.root), data_fingerprint=data_fingerprint(store),
                        split=split, part=part)
    metadata = {k: v for k, v in loaded.metadata.items() if k not in ("format", "model_config", "weights_sha256")}
    metadata[DISTRIBUTION_KEY] = distribution
    save_checkpoint(loaded.path.with_suffix(""), loaded.model, metadata)
    return distribution


def calibrate(checkpoint: str | Path, data: str | Path, *, split: str | None = None, part: str = "val",
              record: bool = False, faults: dict[str, str] | None = None, warn_percentile: float | None = None,
              error_percentile: float | None = None, json_path: str | Path | None = None, device: str = "cpu",
              command: str = "", progress: bool = True) -> dict:
    """`retf calibrate`: the erank distribution of ``part`` (optionally under ``faults``), how
    many windows the checkpoint's default thresholds would flag, printed; with ``record`` the
    distribution is stored in the checkpoint first. Returns {"distribution", "thresholds", "statuses"}."""
    store = ClipStore(data)
    split = split or store.default_split
    loaded = load_checkpoint(checkpoint)
    windows = stream_window_eranks(loaded, store, _clip_ids(store, split, part), device=device, faults=faults,
                                   progress=progress)
    if record:
        _store_distribution(loaded, windows, store, split, part, command)
        loaded = load_checkpoint(checkpoint)
    thresholds = thresholds_for(loaded.metadata, warn_percentile=warn_percentile or DEFAULT_WARN_PERCENTILE,
                                error_percentile=error_percentile or DEFAULT_ERROR_PERCENTILE)
    result = {"checkpoint": str(loaded.path), "data": str(store.root), "split": split, "part": part,
              "faults": dict(faults or {}), "distribution": windows.distribution(),
              "thresholds": {"source": thresholds.source, "fused_warn": thresholds.fused_warn,
                             "fused_error": thresholds.fused_error, "mutual_gain_warn": thresholds.mutual_gain_warn,
                             "mutual_gain_error": thresholds.mutual_gain_error,
                             "modality_limits": {m: vars(limits) for m, limits in thresholds.modality_limits.items()},
                             "fault_limits": {m: vars(limits) for m, limits in thresholds.fault_limits.items()}},
              "statuses": windows.statuses(thresholds)}
    print(format_calibration(result))
    if json_path:
        Path(json_path).write_text(json.dumps(json_ready(result), indent=2))
        print(f"wrote {json_path}")
    return result


def format_calibration(result: dict) -> str:
    """The printed summary of `retf calibrate`."""
    shown = (0.5, 1.0, 5.0, 50.0, 95.0, 99.0, 99.5)
    distribution = result["distribution"]
    faults = ", ".join(f"{m} {f}" for m, f in result["faults"].items()) or "none"
    lines = [f"effective ranks ({distribution['convention']}) of {distribution['windows']} windows, "
             f"{distribution['clips']} clips of {result['split']}/{result['part']}; faults: {faults}",
             f"  {'':<26}" + "".join(f"{percentile_key(p):>8}" for p in shown)]

    def row(name: str, summary: dict) -> None:
        if summary.get("windows"):
            lines.append(f"  {name:<26}" + "".join(f"{summary[percentile_key(p)]:8.3f}" for p in shown))

    last = f"last {distribution['recent_frames']} tokens"
    for m, summary in distribution["recent"].items():
        row(f"{m} {last}", summary)
    for m, summary in distribution.get("spread", {}).items():
        row(f"{m} spread", summary)
    for m, summary in distribution.get("recent_centred", {}).items():
        row(f"{m} centred (moving)", summary)
    for m, summary in distribution["before"].items():
        row(f"{m} before", summary)
    for m, summary in distribution["after"].items():
        row(f"{m} after", summary)
    row("fused", distribution["fused"])
    for pair, summary in distribution["mutual_gain"].items():
        row(f"mutual gain {pair}", summary)
    statuses = result["statuses"]
    n = max(statuses["windows"], 1)
    lines.append(f"status under the node's default thresholds ({result['thresholds']['source']}): "
                 f"ok {statuses['ok']} ({100 * statuses['ok'] / n:.1f}%), warn {statuses['warn']} "
                 f"({100 * statuses['warn'] / n:.1f}%), error {statuses['error']} ({100 * statuses['error'] / n:.1f}%)")
    if statuses["named"]:
        lines.append("  windows flagged by: " + ", ".join(f"{k} {v}" for k, v in statuses["named"].items()))
    return "\n".join(lines)
