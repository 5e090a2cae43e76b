"""Offline evaluation of a checkpoint on a clip store: the MoC table of docs/method.md section 6
and the effective ranks of the tokens the model saw.

How a checkpoint observes and predicts depends on its task (metadata ``task``):

- ``protocol``: observe the first alpha*L frames (subsampled to at most ``window``), predict
  0.5 L frames directly (durations are fractions of 0.5 L).
- ``stream``: observe the last ``window`` frames of the alpha*L prefix at the model fps and
  decode the fixed horizon (``horizon_s``). When 0.5 L is longer than the horizon, the last
  anticipated action is held for the rest (the model cannot see past its horizon; an empty
  transcript stays NONE, which scores as wrong).

Both are scored identically: the first p*L predicted frames against the ground truth, for
p in {0.1, 0.2, 0.3, 0.5}, accumulated per class over the split (moc.py).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import torch

from retf_ros.evaluation.branches import BranchScore
from retf_ros.evaluation.moc import ALPHAS, HORIZONS, MoCAccumulator, cell_key, longest_future, score_future
from retf_ros.fusion import decode_future, effective_rank_masked, inactive_channels, mutual_gain
from retf_ros.fusion.token_stats import TokenMoments
from retf_ros.training import windows
from retf_ros.training.anticipation import MODES, combined_prediction, recognised_current
from retf_ros.training.dataset import TaskSpec, protocol_sample, stream_sample, to_device
from retf_ros.training.prepared import PreparedCache, PreparedClip
from retf_ros.training.prior import TransitionPrior


def task_spec_from_metadata(metadata: dict) -> TaskSpec:
    """The TaskSpec a checkpoint was trained with (its JSON metadata)."""
    config = metadata["model_config"]
    task = metadata.get("task", "stream")
    horizon = int(round(float(metadata["horizon_s"]) * float(metadata["fps"]))) if task == "stream" else 0
    return TaskSpec(task=task, window=int(metadata["window"]), horizon=horizon,
                    num_queries=int(config["num_queries"]), none_class=int(config["num_classes"]),
                    alphas=tuple(metadata.get("alphas", (0.2, 0.3, 0.5))))


def predicted_frames(decoded: list[tuple[int, float, float]], spec: TaskSpec, length: int) -> np.ndarray:
    """(length,) class ids of the future frames from one decoded transcript (rule above)."""
    if spec.task == "protocol":
        return windows.expand_transcript([(c, f) for c, f, _ in decoded], length, spec.none_class)
    horizon = windows.expand_transcript([(c, f) for c, f, _ in decoded], max(spec.horizon, 1), spec.none_class)
    if length <= len(horizon):
        return horizon[:length]
    return np.concatenate([horizon, np.full(length - len(horizon), horizon[-1], dtype=np.int64)])


def observe(clip: PreparedClip, alpha: float, spec: TaskSpec) -> dict:
    """The model input observing the alpha*L prefix of ``clip`` under the checkpoint's task."""
    if spec.task == "protocol":
        return protocol_sample(clip, alpha, spec)
    return stream_sample(clip, windows.observed_length(clip.num_frames, alpha) - 1, spec)


def collate(samples: list[dict]) -> dict:
    return torch.utils.data.default_collate(samples)


@dataclass
class RankStats:
    """Per-sample effective ranks (uncentred, docs/method.md section 2) gathered over an evaluation,
    with each modality's inactive channels before the exchange (what the exchange selects) and
    the per-token statistics of those tokens (fusion/token_stats.py)."""

    modalities: tuple[str, ...]
    before: dict[str, list[float]] = field(default_factory=dict)
    after: dict[str, list[float]] = field(default_factory=dict)
    inactive: dict[str, list[float]] = field(default_factory=dict)
    tokens: dict[str, TokenMoments] = field(default_factory=dict)
    fused: list[float] = field(default_factory=list)

    def add(self, output, mask: torch.Tensor) -> None:
        for m in self.modalities:
            valid = output.valid[m]
            self.before.setdefault(m, []).extend(effective_rank_masked(output.tokens_before[m], valid).tolist())
            self.after.setdefault(m, []).extend(effective_rank_masked(output.tokens_after[m], valid).tolist())
            self.inactive.setdefault(m, []).extend(inactive_channels(output.tokens_before[m], valid).tolist())
            self.tokens.setdefault(m, TokenMoments()).add(output.tokens_before[m], valid)
        observed = mask & torch.stack([output.valid[m] for m in self.modalities]).any(dim=0)
        self.fused.extend(effective_rank_masked(output.fused, observed).tolist())

    def summary(self) -> dict:
        """{"convention", "before": {m}, "after": {m}, "gain": {m}, "fused", "mutual_gain": {"a+b"},
        "inactive_channels": {m}, "token_statistics": {m: TokenMoments.summary()}} (means over the
        windows, and the token statistics over the tokens, where the modality was observed)."""
        def mean(values):
            finite = [v for v in values if np.isfinite(v)]
            return float(np.mean(finite)) if finite else float("nan")

        before = {m: mean(self.before.get(m, [])) for m in self.modalities}
        after = {m: mean(self.after.get(m, [])) for m in self.modalities}
        gain = {m: after[m] - before[m] for m in self.modalities}
        pairs = {f"{a}+{b}": mutual_gain(gain[a], gain[b])
                 for a, b in itertools.combinations(self.modalities, 2)}
        return {"convention": "uncentred", "before": before, "after": after, "gain": gain,
                "fused": mean(self.fused), "mutual_gain": pairs,
                "inactive_channels": {m: mean(self.inactive.get(m, [])) for m in self.modalities},
                "token_statistics": {m: self.tokens.get(m, TokenMoments()).summary() for m in self.modalities}}


@dataclass
class Evaluation:
    moc: MoCAccumulator            # the checkpoint's anticipation mode
    ranks: RankStats
    samples: int
    modes: dict[str, MoCAccumulator] = field(default_factory=dict)  # every mode (with a prior)


def observation_window(num_frames: int, alpha: float, spec: TaskSpec) -> np.ndarray:
    """(W,) clip frames observed at ratio ``alpha`` under the task (what ``observe`` feeds)."""
    observed = windows.observed_length(num_frames, alpha)
    if spec.task == "protocol":
        return windows.protocol_window(observed, spec.window)
    return windows.stream_window(observed - 1, spec.window)


@torch.no_grad()
def evaluate_moc(model, spec: TaskSpec, cache: PreparedCache, clip_ids: list[str], device: torch.device,
                 batch_size: int = 16, alphas=ALPHAS, horizons=HORIZONS, progress=None,
                 branches: BranchScore | None = None, prior: TransitionPrior | None = None,
                 mode: str = "network") -> Evaluation:
    """Observe every clip at every alpha, decode, and accumulate MoC and effective ranks.

    ``progress``: optional callable(n) called after each batch with the number of samples done.
    ``branches``: also score the cue-decided branches over the 0.5 L future into this
    accumulator (synthetic stores; the caller reads its summary).
    ``prior``: the transition prior of the training split; with it every anticipation mode
    (anticipation.py) is scored into ``Evaluation.modes`` and ``mode`` is the one reported
    as ``Evaluation.moc`` (and scored for the branches).
    """
    model.eval()
    modes = MODES if prior is not None else ("network",)
    if mode not in modes:
        raise ValueError(f"anticipation mode {mode!r} needs the transition prior (known: {', '.join(modes)})")
    accumulators = {m: MoCAccumulator(spec.none_class, alphas, horizons) for m in modes}
    ranks = RankStats(tuple(model.config.modalities))
    jobs = [(clip_id, alpha) for clip_id in clip_ids for alpha in alphas]
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start:start + batch_size]
        opened = {clip_id: cache.open(clip_id) for clip_id, _ in chunk}
        samples = [observe(opened[c], a, spec) for c, a in chunk]
        batch = to_device(collate(samples), device)
        output = model(batch["inputs"], batch["mask"], batch["present"])
        ranks.add(output, batch["mask"])
        decoded = decode_future(output.action_logits, output.duration_logits)
        frame_classes = output.segmentation_logits.argmax(dim=-1).cpu().numpy()
        for i, ((clip_id, alpha), transcript) in enumerate(zip(chunk, decoded)):
            clip = opened[clip_id]
            n = clip.num_frames
            observed = windows.observed_length(n, alpha)
            longest = longest_future(n, horizons)
            network = predicted_frames(transcript, spec, longest)
            span = longest if spec.task == "protocol" else max(spec.horizon, 1)
            recognised = recognised_current(frame_classes[i], observation_window(n, alpha, spec), observed)
            for m, accumulator in accumulators.items():
                prediction = combined_prediction(m, network, span, prior, recognised, longest, spec.none_class)
                score_future(accumulator, alpha, clip.labels, prediction)
                if branches is not None and m == mode:
                    future = min(windows.future_length(n, windows.PROTOCOL_FUTURE), n - observed)
                    branches.update(clip_id, observed, prediction[:future])
        if progress is not None:
            progress(len(chunk))
    return Evaluation(accumulators[mode], ranks, len(jobs), accumulators)


def per_class_table(accumulator: MoCAccumulator, classes: list[str]) -> dict:
    """{alpha: {horizon: {class name: pct}}} over the classes present in each cell."""
    acc = accumulator.per_class()
    out: dict = {}
    for a, alpha in enumerate(accumulator.alphas):
        row = {}
        for h, horizon in enumerate(accumulator.horizons):
            row[cell_key(horizon)] = {classes[k]: float(acc[a, h, k]) for k in range(len(classes))
                                      if accumulator.total[a, h, k] > 0}
        out[cell_key(alpha)] = row
    return out
