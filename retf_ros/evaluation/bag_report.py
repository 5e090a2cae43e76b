"""The replay report: ``report.json`` and a self-contained ``report.html`` with PNG plots.

JSON (schema ``retf_ros/replay_report/v1``): the bag and checkpoint, the machine, and per run
(offline, live): accuracy 0/1/2/4 s ahead overall, as MoC and per class, the protocol MoC
table where it applies, inference and end-to-end latency distributions, frame/window
counters (skipped, dropped), effective-rank summary and the per-prediction series the plots
show. The HTML page embeds the plots as base64 PNGs (also written next to it):
``timeline.png`` ground truth vs anticipated labels, ``erank.png`` per-modality and fused
effective ranks over time with the warn/error thresholds, ``latency.png`` latency histograms.
"""
from __future__ import annotations

import base64
import html
import json
import os
import platform
from dataclasses import asdict
from pathlib import Path

import numpy as np

from retf_ros.client import parse_anticipation
from retf_ros.evaluation.bag_scoring import ClipTruth, ReplayRun, label_at, protocol_moc, score_documents
from retf_ros.evaluation.json_safe import json_ready
from retf_ros.evaluation.streaming import DEFAULT_AHEAD_S, NOW, lead_key
from retf_ros.runtime.health import ErankThresholds
from retf_ros.runtime.stats import latency_distribution

SCHEMA = "retf_ros/replay_report/v1"
NS = 1_000_000_000
PLOTTED_AHEAD_S = (0.0, 1.0, 4.0)  # 0 = the current action
TABLE_LEADS = (NOW, *map(lead_key, DEFAULT_AHEAD_S))
# Silences longer than this (between exported clips) are drawn as COMPRESSED_GAP_S.
GAP_S, COMPRESSED_GAP_S = 2.0, 1.0


def _series(documents: list[dict]) -> dict:
    """Per-prediction columns: stamp_ns, labels now/ahead, eranks, status, inference_ms."""
    messages = [parse_anticipation(d) for d in documents]
    modalities = list(documents[0]["erank"]["before"]) if documents else []
    pairs = list(documents[0]["erank"]["mutual_gain"]) if documents else []
    return {
        "stamp_ns": [m.stamp_ns for m in messages],
        "label": {f"{k:g}s": [label_at(m, k) for m in messages] for k in (0.0, *DEFAULT_AHEAD_S)},
        "erank_fused": [d["erank"]["fused"] for d in documents],
        "erank_before": {m: [d["erank"]["before"].get(m) for d in documents] for m in modalities},
        "erank_after": {m: [d["erank"]["after"].get(m) for d in documents] for m in modalities},
        "mutual_gain": {p: [d["erank"]["mutual_gain"].get(p) for d in documents] for p in pairs},
        "status": [d["erank"]["status"] for d in documents],
        "inference_ms": [d["latency"]["inference_ms"] for d in documents],
    }


def _mean(values) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def run_section(run: ReplayRun, clips: list[ClipTruth], metadata: dict) -> dict:
    classes = list(metadata["classes"])
    series = _series(run.documents)
    statuses = series["status"]
    stamps = np.asarray(series["stamp_ns"], dtype=np.int64)
    # Bag time with the silences between clips left out: what a replay at rate 1 would take.
    active_s = float(np.minimum(np.diff(stamps) / NS, GAP_S).sum()) if stamps.size > 1 else 0.0
    section = {
        "mode": run.mode, "device": run.device, "wall_s": run.wall_s,
        "speed_vs_real_time": active_s / run.wall_s if run.mode == "offline" and run.wall_s > 0 else None,
        "frames": run.frames, "predictions": len(run.documents),
        "accuracy": (score_documents(run.documents, clips, classes, float(metadata["horizon_s"]))
                     if clips else None),
        "protocol_moc": (protocol_moc(run.documents, clips, classes, metadata) if clips
                         else {"applies": False, "reason": "the bag has no ground truth"}),
        "latency_ms": {"inference": latency_distribution(series["inference_ms"]),
                       "end_to_end": latency_distribution(run.end_to_end_ms)},
        "counters": dict(run.counters),
        "erank": {"convention": "uncentred",
                  "fused_mean": _mean(series["erank_fused"]),
                  "before_mean": {m: _mean(v) for m, v in series["erank_before"].items()},
                  "after_mean": {m: _mean(v) for m, v in series["erank_after"].items()},
                  "mutual_gain_mean": {p: _mean(v) for p, v in series["mutual_gain"].items()},
                  "status_counts": {s: statuses.count(s) for s in ("ok", "warn", "error")}},
        "notes": list(run.notes),
        "series": series,
    }
    return section


def _lead_scores(section: dict, lead: str) -> dict:
    """{"accuracy", "moc", "scored"} of one lead ("now", "1", ...) of a run (empty without ground truth)."""
    acc = section.get("accuracy")
    if not acc:
        return {}
    if lead == NOW:
        return acc["current"]
    return {"accuracy": acc["accuracy"].get(lead), "moc": acc["moc"].get(lead), "scored": acc["scored"].get(lead)}


def headline(section: dict) -> dict:
    """The few numbers worth a line: accuracy now / 1 / 2 / 4 s ahead, protocol MoC, latency p50."""
    out = {f"accuracy_{lead}": _lead_scores(section, lead).get("accuracy") for lead in TABLE_LEADS}
    moc = section.get("protocol_moc") or {}
    out["protocol_moc_mean"] = moc.get("mean") if moc.get("applies") else None
    out["inference_ms_p50"] = (section["latency_ms"]["inference"] or {}).get("p50")
    out["end_to_end_ms_p50"] = (section["latency_ms"]["end_to_end"] or {}).get("p50")
    return out


def build_report(bag_summary, checkpoint_path: str, checkpoint_sha256: str, metadata: dict,
                 runs: list[ReplayRun], clips: list[ClipTruth], thresholds: ErankThresholds) -> dict:
    sections = {run.mode: run_section(run, clips, metadata) for run in runs}
    report = {
        "schema": SCHEMA,
        "bag": {"path": str(bag_summary.path), "duration_s": bag_summary.duration_s,
                "messages": bag_summary.message_count,
                "topics": {t: {"type": s.msgtype, "count": s.count} for t, s in sorted(bag_summary.topics.items())},
                "ground_truth_clips": len(clips), "warnings": list(bag_summary.warnings)},
        "checkpoint": {"path": str(checkpoint_path), "sha256": checkpoint_sha256,
                       "name": metadata.get("name"), "task": metadata.get("task", "stream"),
                       "classes": list(metadata["classes"]), "modalities": metadata.get("modalities"),
                       "fps": metadata.get("fps"), "window": metadata.get("window"),
                       "horizon_s": metadata.get("horizon_s"),
                       "documented_metrics": metadata.get("metrics")},
        "machine": {"host": platform.node(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "erank_thresholds": asdict(thresholds),
        "runs": sections,
        "headline": {mode: headline(section) for mode, section in sections.items()},
    }
    if "offline" in sections and "live" in sections:
        off, live = report["headline"]["offline"], report["headline"]["live"]
        report["agreement"] = {key: (None if off[key] is None or live[key] is None else live[key] - off[key])
                               for key in (f"accuracy_{lead}" for lead in TABLE_LEADS)}
    return report


def documented_comparison(report: dict) -> list[str]:
    """Lines comparing the checkpoint's recorded test streaming accuracy (``retf eval --record``)
    with this replay's, lead by lead; [] when the checkpoint records none."""
    test = ((report["checkpoint"].get("documented_metrics") or {}).get("test") or {})
    documented = (test.get("streaming") or {}).get("accuracy") or {}
    if not documented:
        return []
    data = test.get("data") or {}
    lines = [f"checkpoint's documented streaming accuracy ({data.get('clips', '?')} {data.get('part', 'test')} clips of "
             f"{data.get('path', '?')}) vs this replay:"]
    for lead, value in documented.items():
        if value is None:
            continue
        here = ", ".join(f"{mode} {head[f'accuracy_{lead}']:.1f}% ({head[f'accuracy_{lead}'] - value:+.1f})"
                         for mode, head in report["headline"].items() if head.get(f"accuracy_{lead}") is not None)
        lines.append(f"  {lead} s ahead: documented {value:.1f}%; {here}")
    return lines


# ---------------------------------------------------------------------------------- plots
class TimeAxis:
    """Bag stamps -> display seconds from the first stamp, long silences drawn short."""

    def __init__(self, stamps_ns: list[int]):
        points = np.unique(np.asarray(stamps_ns, dtype=np.int64))
        if points.size == 0:
            points = np.zeros(1, dtype=np.int64)
        steps = np.diff(points) / NS
        shown = np.where(steps > GAP_S, COMPRESSED_GAP_S, steps)
        self.points = points
        self.display = np.concatenate([[0.0], np.cumsum(shown)])

    def __call__(self, stamps_ns) -> np.ndarray:
        stamps = np.asarray(stamps_ns, dtype=np.int64)
        i = np.clip(np.searchsorted(self.points, stamps, side="right") - 1, 0, len(self.points) - 1)
        return self.display[i] + np.minimum((stamps - self.points[i]) / NS, GAP_S)


def _class_colours(labels: list[str]) -> dict[str, tuple]:
    # optional (extra "report"): only the plots need it
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return {label: cmap(i % 20) for i, label in enumerate(labels)}


def _label_runs(times: np.ndarray, labels: list[str | None], max_step: float):
    """Contiguous (start, width, label) segments of a label sequence sampled at ``times``."""
    segments = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start] or times[i] - times[i - 1] > max_step:
            end = times[i - 1] + max_step / 2
            if labels[start] is not None:
                segments.append((times[start] - max_step / 2, end - (times[start] - max_step / 2), labels[start]))
            start = i
    return segments


def plot_timeline(report: dict, clips: list[ClipTruth], axis: TimeAxis, path: Path) -> None:
    # optional (extra "report"): only the plots need it
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    classes = list(report["checkpoint"]["classes"])
    for clip in clips:
        classes += [label for label in dict.fromkeys(clip.labels) if label not in classes]
    colours = _class_colours(classes)
    rows: list[tuple[str, np.ndarray, list]] = []
    if clips:
        rows.append(("ground truth", axis(np.concatenate([c.stamps_ns for c in clips])),
                     [label for c in clips for label in c.labels]))
    for mode, section in report["runs"].items():
        series = section["series"]
        stamps = np.asarray(series["stamp_ns"], dtype=np.int64)
        for k in PLOTTED_AHEAD_S:
            title = f"{mode}: now" if k == 0 else f"{mode}: {k:g} s ahead"
            # Drawn at the time it is about, so each row lines up with the ground truth.
            rows.append((title, axis(stamps + round(k * NS)), series["label"][f"{k:g}s"]))
    span = float(axis.display[-1]) + 4.0
    fig, ax = plt.subplots(figsize=(min(max(10.0, span / 5), 28.0), 0.55 * len(rows) + 1.6))
    fps = report["checkpoint"].get("fps") or 10.0
    for y, (title, times, labels) in enumerate(reversed(rows)):
        for start, width, label in _label_runs(times, labels, 1.5 / fps):
            ax.broken_barh([(start, width)], (y - 0.4, 0.8), facecolors=colours.get(label, "grey"))
    ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)])
    ax.set_xlabel(f"bag time (s; silences over {GAP_S:g} s drawn as {COMPRESSED_GAP_S:g} s)")
    ax.set_xlim(0, span)
    ax.set_title("Ground truth vs anticipated action (blank = no action anticipated)")
    ax.legend(handles=[Patch(color=colours[c], label=c) for c in classes], loc="upper left",
              bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _nan(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def plot_erank(report: dict, axis: TimeAxis, path: Path) -> None:
    # optional (extra "report"): only the plots need it
    import matplotlib.pyplot as plt

    thresholds = report["erank_thresholds"]
    runs = list(report["runs"].items())
    fig, axes = plt.subplots(len(runs), 2, figsize=(13, 3.6 * len(runs)), squeeze=False)
    for row, (mode, section) in enumerate(runs):
        series = section["series"]
        times = axis(series["stamp_ns"])
        ax = axes[row][0]
        colours = {}
        for modality, values in series["erank_after"].items():
            line, = ax.plot(times, _nan(values), ".", markersize=2, label=f"{modality} after exchange")
            colours[modality] = line.get_color()
        for modality, values in series["erank_before"].items():
            ax.plot(times, _nan(values), ".", markersize=1, alpha=0.35, color=colours[modality],
                    label=f"{modality} before")
        ax.plot(times, _nan(series["erank_fused"]), "k.", markersize=2, label="fused")
        for name, style in (("fused_warn", "--"), ("fused_error", ":")):
            if thresholds.get(name) is not None:
                ax.axhline(thresholds[name], color="red", linestyle=style, linewidth=1, label=name.replace("_", " "))
        ax.set_title(f"{mode}: effective rank (uncentred) per window")
        ax.set_xlabel("bag time (s)")
        ax.legend(fontsize="x-small", ncol=2, markerscale=4)
        ax = axes[row][1]
        for pair, values in series["mutual_gain"].items():
            ax.plot(times, _nan(values), ".", markersize=2, label=pair)
        for name, style in (("mutual_gain_warn", "--"), ("mutual_gain_error", ":")):
            if thresholds.get(name) is not None:
                ax.axhline(thresholds[name], color="red", linestyle=style, linewidth=1, label=name.replace("_", " "))
        ax.set_title(f"{mode}: mutual rank gain per modality pair")
        ax.set_xlabel("bag time (s)")
        ax.legend(fontsize="x-small", markerscale=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_latency(report: dict, runs: list[ReplayRun], path: Path) -> None:
    # optional (extra "report"): only the plots need it
    import matplotlib.pyplot as plt

    samples = [(f"{run.mode}: inference", report["runs"][run.mode]["series"]["inference_ms"]) for run in runs]
    samples += [(f"{run.mode}: end to end (publish -> receive)", run.end_to_end_ms) for run in runs if run.end_to_end_ms]
    fig, axes = plt.subplots(1, len(samples), figsize=(4.5 * len(samples), 3.2), squeeze=False)
    for ax, (title, values) in zip(axes[0], samples):
        if values:
            # The first inference (cold caches) can be 50x the rest: cut the axis at 1.5 x p99
            # and say where the maximum is.
            top = 1.5 * float(np.percentile(values, 99))
            ax.hist(np.minimum(values, top), bins=40, range=(min(0.0, min(values)), top), color="steelblue")
            ax.axvline(float(np.percentile(values, 50)), color="black", linewidth=1, label="p50")
            ax.axvline(float(np.percentile(values, 95)), color="red", linewidth=1, label="p95")
            ax.legend(fontsize="small")
            title += f" (max {max(values):.0f} ms)"
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("ms")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ----------------------------------------------------------------------------------- HTML
def _fmt(value, digits: int = 1, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}{suffix}" if isinstance(value, float) else f"{value}{suffix}"


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


_STYLE = ("body{font-family:sans-serif;max-width:1300px;margin:auto;padding:1em}table{border-collapse:collapse;"
          "margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}")
_PAGE = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>retf_ros replay report</title>"
         "<style>{style}</style></head><body>{body}</body></html>\n")


def _html(report: dict, images: dict[str, Path]) -> str:
    """The page: one list of HTML parts per section, in reading order; ``images`` (timeline,
    erank, latency PNGs) are embedded as base64."""
    runs = report["runs"]
    modes = list(runs)
    sections = [
        _intro_html(report), _accuracy_html(report, runs, modes), _protocol_moc_html(runs, modes),
        _image_html("Ground truth vs anticipation", images["timeline"]), _per_class_html(runs, modes),
        _image_html("Effective rank over time", images["erank"]), _erank_html(runs, modes),
        _image_html("Latency", images["latency"]), _latency_html(runs, modes), _frames_html(runs, modes),
        _notes_html(report, modes),
    ]
    return _PAGE.format(style=_STYLE, body="\n".join(part for section in sections for part in section))


def _intro_html(report: dict) -> list[str]:
    bag, checkpoint, machine = report["bag"], report["checkpoint"], report["machine"]
    return ["<h1>retf_ros replay report</h1>"
            f"<p>Bag <code>{html.escape(bag['path'])}</code> ({bag['duration_s']:.1f} s, {bag['messages']} messages, "
            f"{bag['ground_truth_clips']} ground-truth clips); checkpoint <code>{html.escape(checkpoint['path'])}</code> "
            f"(sha256 {checkpoint['sha256'][:12]}, task {html.escape(str(checkpoint['task']))}, "
            f"horizon {checkpoint['horizon_s']} s). "
            f"Machine: {html.escape(machine['host'])}, {machine['cpu_count']} CPUs.</p>"]


def _accuracy_html(report: dict, runs: dict, modes: list[str]) -> list[str]:
    """Accuracy and MoC k seconds ahead per run, the checkpoint's documented figures, live - offline."""
    rows = []
    for lead in TABLE_LEADS:
        row = [lead if lead == NOW else f"{lead} s"]
        for mode in modes:
            cell = _lead_scores(runs[mode], lead)
            row += [_fmt(cell.get("accuracy")), _fmt(cell.get("moc")), cell.get("scored", 0)]
        rows.append(row)
    parts = ["<h2>Accuracy k seconds ahead (% of scored predictions; MoC = mean over classes)</h2>",
             _table(["ahead"] + [f"{m} {c}" for m in modes for c in ("accuracy", "MoC", "scored")], rows)]
    documented = documented_comparison(report)
    if documented:
        parts.append("<p>" + "<br>".join(html.escape(line) for line in documented) + "</p>")
    if "agreement" in report:
        diffs = ", ".join(f"{k.split('_', 1)[1]}: {_fmt(v, 1, ' pts')}" for k, v in report["agreement"].items())
        parts.append(f"<p>Live minus offline accuracy: {html.escape(diffs)}.</p>")
    return parts


def _protocol_moc_html(runs: dict, modes: list[str]) -> list[str]:
    parts = []
    for mode in modes:
        moc = runs[mode]["protocol_moc"]
        if moc.get("applies"):
            table = moc["table"]
            horizons = list(next(iter(table.values())))
            parts.append(f"<h3>{mode}: MoC under the long-term anticipation protocol (mean {moc['mean']:.2f})</h3>")
            parts.append(_table(["alpha \\ predicted fraction"] + horizons,
                                [[a] + [_fmt(row[h], 2) for h in horizons] for a, row in table.items()]))
        else:
            parts.append(f"<p>{mode}: protocol MoC does not apply: {html.escape(moc.get('reason', ''))}</p>")
    return parts


def _image_html(title: str, image: Path) -> list[str]:
    return [f'<h2>{title}</h2><img src="data:image/png;base64,{base64.b64encode(image.read_bytes()).decode()}">']


def _per_class_html(runs: dict, modes: list[str]) -> list[str]:
    per_class = {m: (runs[m]["accuracy"] or {}).get("per_class", {}) for m in modes}
    classes = list(dict.fromkeys(c for m in modes for lead in per_class[m].values() for c in lead))
    rows = [[c] + [" / ".join(_fmt(per_class[m].get(lead, {}).get(c)) for lead in TABLE_LEADS) for m in modes]
            for c in classes]
    return ["<h2>Per class, accuracy % (now / 1 s / 2 s / 4 s ahead)</h2>", _table(["class"] + modes, rows)]


def _erank_html(runs: dict, modes: list[str]) -> list[str]:
    rows = [[m, _fmt(runs[m]["erank"]["fused_mean"], 2),
             ", ".join(f"{k} {_fmt(v, 2)}" for k, v in runs[m]["erank"]["after_mean"].items()),
             "/".join(str(runs[m]["erank"]["status_counts"][s]) for s in ("ok", "warn", "error"))] for m in modes]
    return [_table(["run", "fused mean", "after exchange (mean)", "status ok/warn/error"], rows)]


def _latency_html(runs: dict, modes: list[str]) -> list[str]:
    rows = [[mode, kind.replace("_", " "), dist["count"], _fmt(dist["p50"]), _fmt(dist["p95"]), _fmt(dist["max"])]
            for mode in modes for kind, dist in runs[mode]["latency_ms"].items() if dist]
    return [_table(["run", "latency", "count", "p50 ms", "p95 ms", "max ms"], rows)]


def _frames_html(runs: dict, modes: list[str]) -> list[str]:
    rows = [[m, runs[m]["device"], _fmt(runs[m]["wall_s"]), _fmt(runs[m]["speed_vs_real_time"], 2),
             runs[m]["frames"], runs[m]["predictions"], ", ".join(f"{k}={v}" for k, v in runs[m]["counters"].items())]
            for m in modes]
    return ["<h2>Frames and windows</h2>",
            _table(["run", "device", "wall s", "x real time", "frames", "predictions", "counters"], rows)]


def _notes_html(report: dict, modes: list[str]) -> list[str]:
    notes = report["bag"]["warnings"] + [f"{m}: {n}" for m in modes for n in report["runs"][m]["notes"]]
    if not notes:
        return []
    return ["<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"]


def write_report(report: dict, runs: list[ReplayRun], clips: list[ClipTruth], out_dir: str | os.PathLike
                 ) -> dict[str, Path]:
    """Write report.json, the PNG plots and report.html into ``out_dir``; returns their paths."""
    # optional (extra "report"): only the plots need it
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamps = [s for section in report["runs"].values() for s in section["series"]["stamp_ns"]]
    stamps += [int(s) for c in clips for s in c.stamps_ns]
    axis = TimeAxis(stamps)
    paths = {"timeline": out / "timeline.png", "erank": out / "erank.png", "latency": out / "latency.png"}
    plot_timeline(report, clips, axis, paths["timeline"])
    plot_erank(report, axis, paths["erank"])
    plot_latency(report, runs, paths["latency"])
    paths["json"] = out / "report.json"
    paths["json"].write_text(json.dumps(json_ready(report), indent=1, allow_nan=False) + "\n")
    paths["html"] = out / "report.html"
    paths["html"].write_text(_html(report, {k: paths[k] for k in ("timeline", "erank", "latency")}))
    return paths
