"""`retf ablate`: the ablation table of docs/training.md, mean over seeds, on one clip store.

Every variant is trained (``OUT/<variant>/seed_<S>``, resumable: finished runs are reused) with
the same options except what the variant changes, then evaluated on the test part of the split
(``eval.json`` next to each run). ``OUT/ablation.md`` and ``OUT/ablation.json`` hold the table
and the two checks the project requires of RTF (beats every other variant on MoC; raises the
fused effective rank over the same model without the exchange), stated as measured.
``table_only`` builds the table from the evaluations already under ``OUT`` (``best.json`` +
``eval.json`` per run, checked against the clip store), so runs trained on several machines or
in several sittings can be gathered without their weights. The last row is the model-free
prior (prior.py), computed from the clip store's labels.
"""
from __future__ import annotations

import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from retf_ros.data.clipstore import ClipStore, data_fingerprint
from retf_ros.errors import RetfError
from retf_ros.evaluation.eval_report import combine_runs, evaluate_checkpoint
from retf_ros.evaluation.json_safe import json_ready
from retf_ros.evaluation.prior_moc import prior_report
from retf_ros.training.config import invoked_command, load_config
from retf_ros.training.prepared import PreparedCache
from retf_ros.training.trainer import Trainer, default_cache_dir
from retf_ros.training.worker_pool import Job, run_jobs


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    overrides: dict = field(default_factory=dict)  # TrainConfig keys / "model.<field>"


VARIANTS = (
    Variant("rtf", "RTF (rank exchange, rho 0.3) + cross-modal fusion", {"model.fusion": "rtf", "model.exchange_ratio": 0.3}),
    Variant("no_exchange", "same fusion block without the exchange", {"model.fusion": "no_exchange"}),
    Variant("concat", "concatenate tokens + linear", {"model.fusion": "concat"}),
    Variant("sum", "sum of tokens + LayerNorm", {"model.fusion": "sum"}),
    Variant("sum_exchange", "the RTF exchange (rho 0.3) in front of the sum", {"model.fusion": "sum_exchange"}),
    Variant("bn_gamma", "RTF, channels chosen by |BatchNorm gamma| (authors' code)",
            {"model.fusion": "rtf", "model.exchange_selection": "bn_gamma"}),
    Variant("rtf_bn", "RTF (variance rule) after bn_gamma's per-modality BatchNorm",
            {"model.fusion": "rtf", "model.exchange_batchnorm": True}),
    Variant("no_exchange_bn", "the same BatchNorm and fusion block without the exchange",
            {"model.fusion": "no_exchange", "model.exchange_batchnorm": True}),
    Variant("rgb_only", "RGB alone", {"modalities": ["rgb"]}),
    Variant("depth_only", "depth alone", {"modalities": ["depth"]}),
    Variant("skeleton_only", "skeleton alone", {"modalities": ["skeleton"]}),
    Variant("rtf_rho0.1", "RTF, rho 0.1", {"model.fusion": "rtf", "model.exchange_ratio": 0.1}),
    Variant("rtf_rho0.2", "RTF, rho 0.2", {"model.fusion": "rtf", "model.exchange_ratio": 0.2}),
)
VARIANT_NAMES = tuple(v.name for v in VARIANTS)


@dataclass(frozen=True)
class RunOptions:
    """What every run of one ablation shares; worker processes receive it (picklable).
    ``command`` is the parent's command line: a worker's own ``sys.argv`` is not the user's."""
    data: str | Path
    out: Path
    config_path: str | Path | None
    epochs: int | None
    split: str | None
    device: str
    threads: int | None
    cache_dir: str
    command: str
    stream_stride: int | None

    def run_dir(self, variant: Variant, seed: int) -> Path:
        return self.out / variant.name / f"seed_{seed}"

    def config(self, variant: Variant, seed: int):
        """The TrainConfig of one run: the YAML, then the variant, then the shared options."""
        overrides = {**variant.overrides, "seed": seed, "epochs": self.epochs, "split": self.split,
                     "device": self.device, "threads": self.threads, "cache_dir": self.cache_dir}
        return load_config(self.config_path, overrides)

    def trainer(self, variant: Variant, seed: int):

        return Trainer(self.config(variant, seed), self.data, self.run_dir(variant, seed),
                       f"{self.command} [variant {variant.name}, seed {seed}]")


def _run_variant(variant: Variant, seed: int, options: RunOptions) -> dict:
    """Train (or resume) one run and evaluate its best checkpoint on the test clips, once:
    ``eval.json`` is reused while it evaluates the same weights."""
    run_dir = options.run_dir(variant, seed)
    print(f"retf ablate: {variant.name} seed {seed} -> {run_dir}", file=sys.stderr)
    trainer = options.trainer(variant, seed)
    best = trainer.run()
    eval_path = run_dir / "eval.json"
    weights_sha = json.loads(best.with_suffix(".json").read_text())["weights_sha256"]
    if eval_path.exists():
        cached = json.loads(eval_path.read_text())
        if cached.get("sha256") == weights_sha:
            return cached
    store = ClipStore(options.data)
    clip_ids = store.clip_ids(trainer.split, "test")
    report = evaluate_checkpoint(best, store, clip_ids, trainer.device, cache_dir=options.cache_dir,
                                 stream_stride=options.stream_stride)
    eval_path.write_text(json.dumps(json_ready(report), indent=1))
    return json.loads(eval_path.read_text())


def _recorded_evaluation(variant: Variant, seed: int, out: Path, fingerprint: str) -> dict | None:
    """A finished run's ``eval.json``, or None when the run has no evaluation yet. Refused when
    the run was trained on another clip store or the evaluation is of other weights."""
    run_dir = out / variant.name / f"seed_{seed}"
    meta_path, eval_path = run_dir / "best.json", run_dir / "eval.json"
    if not (meta_path.exists() and eval_path.exists()):
        return None
    try:
        meta, report = json.loads(meta_path.read_text()), json.loads(eval_path.read_text())
        trained_on, weights = meta["training"]["data_fingerprint"], meta["weights_sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RetfError(f"{run_dir}: unreadable best.json / eval.json ({exc})") from exc
    if trained_on != fingerprint:
        raise RetfError(f"{run_dir} was trained on another clip store (data fingerprint {trained_on[:12]}..., "
                        f"--data has {fingerprint[:12]}...)")
    if report.get("sha256") != weights:
        raise RetfError(f"{eval_path} evaluates other weights than {meta_path} records")
    return report


def _finished(variant: Variant, seed: int, options: RunOptions, fingerprint: str) -> bool:
    """Has the run trained to the requested epochs and been evaluated? (What the sequential
    path reuses, judged without starting a worker.)"""
    if _recorded_evaluation(variant, seed, options.out, fingerprint) is None:
        return False
    meta = json.loads((options.run_dir(variant, seed) / "best.json").read_text())
    return meta["training"]["config"]["epochs"] >= options.config(variant, seed).epochs


def _prepare_clips(data, cache_dir: str, items: list) -> int:
    """Worker of :func:`prepare_shared_frames`: prepare ``items`` ((PrepareSpec, clip id) pairs)."""
    store = ClipStore(data)
    for spec, clip_id in items:
        PreparedCache(store, cache_dir, spec).ensure(clip_id)
    return len(items)


def prepare_shared_frames(options: RunOptions, variants: list[Variant], seed: int, jobs: int) -> None:
    """Prepare the frame cache of every clip the runs read (training, validation and test clips
    of the split, the inputs of every variant) before any worker starts, so that the workers
    only read it. Each clip is prepared by exactly one of ``jobs`` spawned processes. What is
    prepared does not depend on the seed: ``seed`` only names one run of each variant."""


    wanted: dict = {}  # spec without modalities -> ({modality: None}, {clip id: None}), both ordered
    store = None
    for variant in variants:
        trainer = options.trainer(variant, seed)
        store = trainer.store
        modalities, clips = wanted.setdefault(replace(trainer.cache.spec, modalities=()), ({}, {}))
        modalities.update(dict.fromkeys(trainer.cache.spec.modalities))
        clips.update(dict.fromkeys(c for part in ("train", "val", "test")
                                   for c in store.clip_ids(trainer.split, part)))
    todo = []
    for key, (modalities, clips) in wanted.items():
        cache = PreparedCache(store, options.cache_dir, replace(key, modalities=tuple(modalities)))
        todo += [(cache.spec, c) for c in clips if not cache.is_ready(c)]
    if not todo:
        return
    size = max(1, min(16, len(todo) // (4 * jobs)))
    chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), mp_context=context) as pool, \
            tqdm(total=len(todo), desc="preparing frames", unit="clip", file=sys.stderr) as bar:
        for done in as_completed([pool.submit(_prepare_clips, options.data, options.cache_dir, c) for c in chunks]):
            bar.update(done.result())


def _train_in_workers(variants: list[Variant], seeds, options: RunOptions, fingerprint: str, jobs: int) -> None:
    """Train and evaluate the unfinished runs in ``jobs`` worker processes (one torch thread each
    unless ``threads`` says otherwise), seed by seed, so that an interrupted ablation has whole
    seeds done first. Each run writes what the sequential path writes, its output going to
    ``ablate.log`` in its run directory."""
    todo = [(v, s) for s in seeds for v in variants if not _finished(v, s, options, fingerprint)]
    if not todo:
        return
    prepare_shared_frames(options, list({v.name: v for v, _ in todo}.values()), seeds[0], jobs)
    worker_options = replace(options, threads=options.threads or 1)
    print(f"retf ablate: {len(todo)} run(s) in {min(jobs, len(todo))} worker processes "
          f"(each run's output: {options.out}/<variant>/seed_<S>/ablate.log)", file=sys.stderr)
    run_jobs([Job(f"{v.name} seed {s}", options.run_dir(v, s) / "ablate.log", _run_variant, (v, s, worker_options))
              for v, s in todo], jobs, desc="retf ablate")


def _finite_mean(values) -> float | None:
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _moc_mean(moc: dict) -> float:
    values = [v for row in moc.values() for v in row.values() if v is not None]
    return float(np.mean(values)) if values else float("nan")


def _alpha_means(moc: dict) -> dict:
    """{alpha: MoC mean over its horizons} of a MoC table."""
    return {a: float(np.nanmean([v if v is not None else np.nan for v in row.values()])) for a, row in moc.items()}


def _summarise(name: str, reports: list[dict]) -> dict:

    combined = combine_runs(reports)
    per_seed = [_moc_mean(r["moc"]) for r in reports]
    streaming = combined.get("streaming") or {}
    erank = combined["effective_rank"] or {}
    return {
        "variant": name,
        "seeds": len(reports),
        "moc": combined["moc"],
        "moc_mean": float(np.mean(per_seed)),
        "moc_mean_std": float(np.std(per_seed)),
        "moc_mean_per_seed": per_seed,
        "moc_alpha": _alpha_means(combined["moc"]),
        "streaming_accuracy": streaming.get("accuracy"),
        "streaming_mean": _finite_mean((streaming.get("accuracy") or {}).values()),
        "fused_erank": erank.get("fused"),
        "mutual_gain": erank.get("mutual_gain"),
        "branches": {name: b["balanced_accuracy"] for name, b in (combined.get("branches") or {}).items()} or None,
    }


def _fmt(value, digits=2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.{digits}f}"


def render_markdown(rows: list[dict], checks: dict, header: str, seeds=()) -> str:
    """The ablation table (markdown). With more than one of ``seeds``, a column holds each row's
    MoC mean per seed (``moc_mean_per_seed``, in the order of ``seeds``)."""
    branch_names = list(dict.fromkeys(b for row in rows for b in (row.get("branches") or {})))
    branch_head = f" branches {' / '.join(branch_names)} |" if branch_names else ""
    per_seed_head = f" MoC per seed {' / '.join(map(str, seeds))} |" if len(seeds) > 1 else ""
    lines = [header, "",
             f"| variant | MoC a=0.2 | MoC a=0.3 | MoC mean (std over seeds) |{per_seed_head} stream acc 1 s / 2 s / 4 s "
             f"| fused erank |{branch_head}",
             "|---|---|---|---|---|---|" + ("---|" if per_seed_head else "") + ("---|" if branch_names else "")]
    for row in rows:
        per_seed_cell = (f" {' / '.join(_fmt(v) for v in row.get('moc_mean_per_seed') or ())} |"
                         if per_seed_head else "")
        acc = row["streaming_accuracy"] or {}
        stream = " / ".join(_fmt(acc.get(k)) for k in ("1", "2", "4")) if acc else "n/a"
        branches = row.get("branches") or {}
        branch_cell = f" {' / '.join(_fmt(branches.get(b), 1) for b in branch_names)} |" if branch_names else ""
        lines.append(f"| {row['variant']} | {_fmt(row['moc_alpha'].get('0.2'))} | {_fmt(row['moc_alpha'].get('0.3'))} "
                     f"| {_fmt(row['moc_mean'])} ({_fmt(row['moc_mean_std'])}) |{per_seed_cell} {stream} "
                     f"| {_fmt(row['fused_erank'])} |{branch_cell}")
    lines += ["", "MoC: percent, mean over the horizons 0.1/0.2/0.3/0.5 of the row's alpha; fused erank: "
              "uncentred effective rank of the fused tokens, mean over test windows."]
    if branch_names:
        lines.append("Branches: balanced accuracy (percent, 50 = guessing) of anticipating each cue-decided "
                     "branch of the synthetic task before it is taken (colour: RGB cue, gesture: skeleton cue, "
                     "tray: depth cue; retf_ros/evaluation/branches.py).")
    lines.append("")
    for name, check in checks.items():
        lines.append(f"- {name}: {'yes' if check['holds'] else 'NO'} — {check['detail']}")
    return "\n".join(lines) + "\n"


def _rtf_beats_the_others(by_name: dict, key: str) -> dict:
    """Does the rtf row's ``key`` exceed every other fusion's and single modality's?
    (The rho sweep rows are RTF itself and are not compared.)"""
    rtf = by_name["rtf"][key]
    others = {n: r[key] for n, r in by_name.items()
              if n != "rtf" and not n.startswith("rtf_rho") and r.get(key) is not None}
    not_below = {n: v for n, v in others.items() if rtf is None or v >= rtf}
    detail = f"RTF {_fmt(rtf)}; " + (", ".join(f"{n} {v:.2f}" for n, v in sorted(not_below.items()))
                                      + " at or above it" if not_below else "all others below")
    return {"holds": bool(others) and rtf is not None and not not_below, "detail": detail}


def requirement_checks(rows: list[dict]) -> dict:
    """The claims the project must report honestly, evaluated on the measured rows."""
    by_name = {r["variant"]: r for r in rows}
    checks = {}
    if "rtf" in by_name:
        checks["RTF beats every other fusion and single modality on MoC"] = _rtf_beats_the_others(by_name, "moc_mean")
        if all(r.get("streaming_mean") is not None for r in rows):
            checks["RTF beats every other fusion and single modality on streaming accuracy (mean of 1/2/4 s)"] = \
                _rtf_beats_the_others(by_name, "streaming_mean")
        singles = {n: r["moc_mean"] for n, r in by_name.items() if n.endswith("_only")}
        fusions = {n: r["moc_mean"] for n, r in by_name.items() if not n.endswith("_only")}
        if singles and fusions:
            best_single = max(singles, key=singles.get)
            worst_fusion = min(fusions, key=fusions.get)
            checks["The benchmark needs fusion: every fusion beats every single modality on MoC"] = {
                "holds": fusions[worst_fusion] > singles[best_single],
                "detail": f"lowest fusion {worst_fusion} {fusions[worst_fusion]:.2f}, "
                          f"best single modality {best_single} {singles[best_single]:.2f}"}
        if "no_exchange" in by_name:
            rtf, plain = by_name["rtf"], by_name["no_exchange"]
            checks["RTF raises the fused effective rank (vs no exchange)"] = {
                "holds": _above(rtf, plain, "fused_erank"),
                "detail": f"RTF {_fmt(rtf['fused_erank'])} vs no_exchange {_fmt(plain['fused_erank'])}"}
    for exchanged, plain, where in (("rtf_bn", "no_exchange_bn", "Behind the BatchNorm"),
                                     ("sum_exchange", "sum", "In front of the sum")):
        if exchanged in by_name and plain in by_name:
            name = f"{where} the exchange helps: {exchanged} above {plain} on MoC and fused erank"
            checks[name] = _exchange_helps(by_name[exchanged], by_name[plain])
    return checks


def _exchange_helps(exchanged: dict, plain: dict) -> dict:
    """A model with the exchange against its twin without: above on MoC and on fused erank?"""
    return {"holds": _above(exchanged, plain, "moc_mean") and _above(exchanged, plain, "fused_erank"),
            "detail": f"MoC {_fmt(exchanged['moc_mean'])} vs {_fmt(plain['moc_mean'])}, fused erank "
                      f"{_fmt(exchanged['fused_erank'])} vs {_fmt(plain['fused_erank'])}"}


def _above(row: dict, other: dict, key: str) -> bool:
    """Both rows measured ``key`` and ``row``'s is the larger."""
    a, b = row.get(key), other.get(key)
    return a is not None and b is not None and a > b


def prior_row(data, out: Path, first: Variant, seeds, split: str | None) -> dict:
    """The table row of the model-free prior (prior.py): fitted on the training clips of the
    split the first variant's first seed was trained on, at its frame rate, scored on the test
    clips. It needs the clip store only, so ``table_only`` computes it too. The same for
    every seed (no randomness): its std is 0."""
    meta = json.loads((out / first.name / f"seed_{seeds[0]}" / "best.json").read_text())
    report = prior_report(ClipStore(data), split or meta["training"]["split"], "test", float(meta["fps"]))
    mean = _moc_mean(report["moc"])
    return {"variant": "prior", "seeds": len(seeds), "moc": report["moc"], "moc_mean": mean, "moc_mean_std": 0.0,
            "moc_mean_per_seed": [mean] * len(seeds),
            "moc_alpha": _alpha_means(report["moc"]),
            "streaming_accuracy": None, "streaming_mean": None, "fused_erank": None, "mutual_gain": None,
            "branches": None}


def prior_checks(rows: list[dict], prior: dict) -> dict:
    """Does every trained variant beat the model-free prior on the MoC mean?"""
    below = {r["variant"]: r["moc_mean"] for r in rows if not r["moc_mean"] > prior["moc_mean"]}
    detail = f"prior {_fmt(prior['moc_mean'])}; " + (
        ", ".join(f"{n} {_fmt(v)}" for n, v in below.items()) + " at or below it" if below else "every variant above it")
    return {"Every variant beats the model-free prior on MoC": {"holds": not below, "detail": detail}}


def run_ablation(data, out, config_path=None, seeds=(1, 10, 13452), epochs=None, variants=None, split=None,
                 device="auto", threads=None, cache_dir=None, stream_stride: int | None = 5,
                 table_only: bool = False, jobs: int = 1) -> dict:
    """Train + evaluate every chosen variant for every seed; write ablation.md / ablation.json.

    ``table_only``: train nothing, read every run's recorded evaluation (RetfError naming the
    runs that have none).

    ``stream_stride``: model frames between streaming predictions in the evaluation (5 = one
    prediction per second at 5 fps: the same scores in expectation as every frame, 5x cheaper).

    ``jobs`` > 1: the unfinished runs train in that many worker processes at once
    (:func:`_train_in_workers`); the records are those of the sequential path.
    """
    chosen = [v for v in VARIANTS if variants is None or v.name in variants]
    unknown = sorted(set(variants or ()) - set(VARIANT_NAMES))
    if unknown:
        raise RetfError(f"unknown variant(s) {', '.join(unknown)} (known: {', '.join(VARIANT_NAMES)})")
    if jobs < 1:
        raise RetfError(f"--jobs {jobs}: at least 1 worker process")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    command = invoked_command()
    options = RunOptions(data=data, out=out, config_path=config_path, epochs=epochs, split=split, device=device,
                         threads=threads, cache_dir=cache_dir or str(default_cache_dir()), command=command,
                         stream_stride=stream_stride)
    fingerprint = data_fingerprint(data)
    recorded = None
    if not table_only and jobs > 1:
        _train_in_workers(chosen, seeds, options, fingerprint, jobs)
    if table_only or jobs > 1:
        recorded = {(v.name, s): _recorded_evaluation(v, s, out, fingerprint) for v in chosen for s in seeds}
        missing = [f"{name} seed {seed}" for (name, seed), report in recorded.items() if report is None]
        if missing:
            raise RetfError(f"--table-only: no recorded evaluation under {out} for {', '.join(missing)} "
                            "(run without --table-only to train them)")
    rows = []
    for variant in chosen:
        if recorded is not None:
            reports = [recorded[variant.name, seed] for seed in seeds]
        else:
            reports = [_run_variant(variant, seed, options) for seed in seeds]
        rows.append(_summarise(variant.name, reports))
    checks = requirement_checks(rows)
    prior = prior_row(data, out, chosen[0], seeds, split)
    checks.update(prior_checks(rows, prior))
    rows.append(prior)
    header = (f"## Ablation on {data} (mean of {len(seeds)} seed(s): {', '.join(map(str, seeds))})\n\n"
              f"Command: `{command}`")
    result = {"command": command, "data": str(data), "data_fingerprint": fingerprint,
              "seeds": list(seeds), "variants": {v.name: v.description for v in chosen},
              "rows": rows, "checks": checks}
    (out / "ablation.json").write_text(json.dumps(json_ready(result), indent=1))
    markdown = render_markdown(rows, checks, header, seeds)
    (out / "ablation.md").write_text(markdown)
    print(markdown)
    return result
