"""`retf bag eval`: offline and/or live replay of a bag, scored and written as a report."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from retf_ros.bags.bagio import BagReader
from retf_ros.bags.conventions import ModalityTopics
from retf_ros.bags.frames import ground_truth
from retf_ros.checkpoint import load_checkpoint
from retf_ros.errors import RetfError
from retf_ros.evaluation.bag_report import build_report, write_report
from retf_ros.evaluation.bag_scoring import ReplayRun, split_clips
from retf_ros.param_file import node_parameters
from retf_ros.replay.live import LiveOptions, run_live
from retf_ros.replay.offline import OfflineOptions, run_offline
from retf_ros.runtime.settings import erank_thresholds


@dataclass(frozen=True)
class EvalRequest:
    bag: Path
    checkpoint: Path
    report_dir: Path
    offline: bool = True
    live: bool = False
    params_file: Path | None = None
    device: str = "cpu"
    torch_threads: int = 1
    rate: float = 1.0
    domain_id: int | None = None
    topics: ModalityTopics = ModalityTopics()
    overrides: dict = field(default_factory=dict)
    progress: bool = True
    distro: str | None = None


@dataclass
class EvalOutcome:
    report: dict
    paths: dict[str, Path]
    runs: list[ReplayRun]


def evaluate_bag(request: EvalRequest, on_document=None) -> EvalOutcome:
    """Run the requested replays, score them against the bag's ground truth, write the report.

    ``on_document``: called with each live anticipation document as it arrives (the demo prints them).
    """
    if not (request.offline or request.live):
        raise RetfError("nothing to do: enable the offline run, the live run or both")
    reader = BagReader(request.bag, distro=request.distro)
    params = node_parameters(request.params_file)
    loaded = load_checkpoint(request.checkpoint)
    thresholds = erank_thresholds(params, loaded.metadata)   # for the report; run_offline's are the same
    metadata = dict(loaded.metadata)
    clips = split_clips(ground_truth(reader, request.topics.ground_truth))
    runs: list[ReplayRun] = []
    if request.offline:
        options = OfflineOptions(device=request.device, torch_threads=request.torch_threads, params=params,
                                 topics=request.topics, distro=request.distro)
        runs.append(run_offline(request.bag, loaded.path, options, progress=request.progress))
    if request.live:
        overrides = {"device": request.device, "torch_threads": request.torch_threads, **request.overrides}
        live_options = LiveOptions(params_file=request.params_file, rate=request.rate, overrides=overrides,
                                   domain_id=request.domain_id, topics=request.topics, distro=request.distro)
        runs.append(run_live(request.bag, loaded.path, request.report_dir / "live", live_options, on_document,
                             tuple(loaded.model.config.modalities)))
    report = build_report(reader.summary, str(loaded.path), loaded.sha256, metadata, runs, clips, thresholds)
    if not clips:
        report["bag"]["warnings"].append("the bag has no ground truth on "
                                         f"{request.topics.ground_truth}: accuracy is not reported")
    paths = write_report(report, runs, clips, request.report_dir)
    return EvalOutcome(report, paths, runs)


def summary_lines(report: dict) -> list[str]:
    """Headline numbers, one line per run (what the CLI and the demo print at the end)."""
    lines = []
    for mode, head in report["headline"].items():
        def pct(key):
            value = head.get(key)
            return "–" if value is None else f"{value:.1f}%"
        e2e = head.get("end_to_end_ms_p50")
        moc = head.get("protocol_moc_mean")
        lines.append(f"{mode:>7}: accuracy now {pct('accuracy_now')}, 1 s {pct('accuracy_1')}, "
                     f"2 s {pct('accuracy_2')}, 4 s {pct('accuracy_4')} ahead"
                     + ("" if moc is None else f"; protocol MoC {moc:.1f}")
                     + (f"; inference p50 {head['inference_ms_p50']:.1f} ms" if head.get("inference_ms_p50") else "")
                     + ("" if e2e is None else f"; end-to-end p50 {e2e:.1f} ms"))
    return lines
