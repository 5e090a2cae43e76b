"""Training and validation samples drawn from prepared clips (torch Datasets).

A sample is a dict of tensors (collated by the default collate into a batch):
``inputs`` {modality: (W, ...) float32}, ``mask`` (W,) bool (frame exists),
``present`` {modality: (W,) bool} (frame exists and the sensor delivered it), ``frame_labels`` (W,) int64 (IGNORE on padding), ``future_classes`` (Q,) int64,
``future_durations`` (Q,) float32, ``future_valid`` (Q,) bool — the targets of
``retf_ros.fusion.losses.r3d_losses``.

Modality dropout is not done here: ``R3DModel`` drops whole modalities per sample in training
mode (``R3DConfig.modality_dropout``), after the frames are encoded.

Randomness comes from ``numpy.random.default_rng([seed, epoch, index])``: a sample depends only
on its index and the epoch, never on the worker or rank that draws it, so runs are reproducible
under any DataLoader/DistributedSampler arrangement and a resumed run sees the same epochs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from retf_ros.training import windows
from retf_ros.training.augment import Augmentation
from retf_ros.training.prepared import PreparedCache, PreparedClip

TASKS = ("stream", "protocol")


@dataclass(frozen=True)
class TaskSpec:
    """What a sample observes and predicts (docs/training.md, "Task definition").

    window: observed frames W. horizon: future frames of the stream task (horizon_s * fps).
    alphas: observation ratios sampled by the protocol task. num_queries: Q.
    none_class: the NONE class id (= number of classes K).
    """

    task: str
    window: int
    horizon: int
    num_queries: int
    none_class: int
    alphas: tuple[float, ...] = (0.2, 0.3, 0.5)


def build_sample(clip: PreparedClip, idx: np.ndarray, future_labels: np.ndarray, spec: TaskSpec) -> dict:
    """One sample from window frame indices ``idx`` (W,) (PAD = -1) and the future's labels."""
    mask = idx >= 0
    safe = np.where(mask, idx, 0)
    inputs, present = {}, {}
    for modality, frames in clip.inputs.items():
        x = torch.from_numpy(np.asarray(frames[safe], dtype=np.float32))
        keep = mask & clip.present[modality][safe]
        x[torch.from_numpy(~keep)] = 0.0
        inputs[modality] = x
        present[modality] = torch.from_numpy(keep)
    targets = windows.future_targets(future_labels, spec.num_queries, spec.none_class)
    return {
        "inputs": inputs,
        "mask": torch.from_numpy(mask),
        "present": present,
        "frame_labels": torch.from_numpy(windows.gather_labels(clip.labels, idx)),
        "future_classes": torch.from_numpy(targets.classes),
        "future_durations": torch.from_numpy(targets.durations),
        "future_valid": torch.from_numpy(targets.valid),
    }


def stream_sample(clip: PreparedClip, end: int, spec: TaskSpec, speed: float = 1.0) -> dict:
    """Observe the W frames ending at ``end``, predict the next ``spec.horizon`` frames (of the
    clip played at ``speed``; the end point must leave room for round(speed * horizon) frames)."""
    future = clip.labels[windows.stream_future(end, spec.horizon, speed)]
    return build_sample(clip, windows.stream_window(end, spec.window, speed), future, spec)


def protocol_sample(clip: PreparedClip, alpha: float, spec: TaskSpec, speed: float = 1.0) -> dict:
    """Observe the first alpha*L frames (subsampled to <= W), predict the next 0.5 L frames."""
    n = clip.num_frames
    observed = windows.observed_length(n, alpha)
    future = clip.labels[observed: observed + windows.future_length(n, windows.PROTOCOL_FUTURE)]
    return build_sample(clip, windows.protocol_window(observed, spec.window, speed), future, spec)


class WindowDataset(Dataset):
    """``samples_per_clip`` samples from each clip of ``clip_ids``.

    ``train=True``: window end points (stream) or observation ratios (protocol) drawn at random
    per epoch (call :meth:`set_epoch`). ``train=False``: fixed, evenly spaced end points (stream)
    or every ratio of ``spec.alphas`` (protocol).
    Clips too short for one stream sample (fewer than horizon + 1 frames) are skipped
    (``skipped`` lists them).
    """

    def __init__(self, cache: PreparedCache, clip_ids: list[str], spec: TaskSpec, samples_per_clip: int,
                 train: bool, seed: int = 0, augmentation: Augmentation | None = None):
        if spec.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {spec.task!r}")
        self.cache = cache
        self.spec = spec
        self.train = train
        self.seed = seed
        self.augmentation = augmentation if train and augmentation is not None else Augmentation()
        self.epoch = 0
        self.samples_per_clip = len(spec.alphas) if (spec.task == "protocol" and not train) else samples_per_clip
        self.clip_ids: list[str] = []
        self.skipped: list[str] = []
        self._lengths: list[int] = []
        for clip_id in clip_ids:
            n = cache.open(clip_id).num_frames
            if spec.task == "stream" and windows.stream_end_range(n, spec.horizon) is None:
                self.skipped.append(clip_id)
                continue
            self.clip_ids.append(clip_id)
            self._lengths.append(n)
        self._open: dict[int, PreparedClip] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clip_ids) * self.samples_per_clip

    def _clip(self, c: int) -> PreparedClip:
        # Memory maps are cheap to keep open; the arrays themselves stay on disk.
        if c not in self._open:
            self._open[c] = self.cache.open(self.clip_ids[c])
        return self._open[c]

    def __getitem__(self, index: int) -> dict:
        c, k = divmod(index, self.samples_per_clip)
        clip = self._clip(c)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        augment = self.augmentation
        augment_rng = np.random.default_rng([self.seed, self.epoch, index, 1])  # off: rng's draws unchanged
        speed = augment.draw_speed(augment_rng)
        if self.spec.task == "protocol":
            alpha = augment.draw_alpha(augment_rng, self.spec.alphas) if self.train else None
            if alpha is None:
                alpha = float(rng.choice(self.spec.alphas)) if self.train else self.spec.alphas[k]
            sample = protocol_sample(clip, alpha, self.spec, speed)
        else:
            span = windows.stream_end_range(clip.num_frames, int(round(speed * self.spec.horizon)))
            if span is None:  # too short for the horizon played slower: the clip at its own speed
                speed, span = 1.0, windows.stream_end_range(clip.num_frames, self.spec.horizon)
            lo, hi = span
            if self.train:
                end = int(rng.integers(lo, hi + 1))
            else:
                end = int(round(lo + (hi - lo) * (k + 0.5) / self.samples_per_clip))
            sample = stream_sample(clip, end, self.spec, speed)
        if augment.skeleton and "skeleton" in sample["inputs"]:
            sample["inputs"]["skeleton"] = augment.apply_skeleton(sample["inputs"]["skeleton"],
                                                                  sample["present"]["skeleton"], augment_rng)
        return sample


def to_device(batch: dict, device: torch.device) -> dict:
    """``batch`` (nested dicts of tensors) on ``device``."""
    return {k: (to_device(v, device) if isinstance(v, dict) else v.to(device)) for k, v in batch.items()}
