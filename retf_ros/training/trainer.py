"""The training loop of `retf train` (single process or DistributedDataParallel under torchrun).

A run directory holds:
- ``last.safetensors`` / ``last.json``: the model after the latest finished epoch (a normal
  checkpoint) and ``last.optim.safetensors`` / ``last.optim.json``: optimizer state, epoch,
  step, best score and the run's config. Training again into the same directory resumes at
  the next epoch (the config must match, except epochs/device/workers/threads/cache).
- ``best.safetensors`` / ``best.json``: the checkpoint with the best validation score.
- ``log.jsonl``: one line of metrics per epoch.

Under torchrun every rank trains on its share of each epoch's samples (DistributedSampler);
rank 0 alone prepares the frame cache, validates and writes files, the others wait at barriers.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from retf_ros.checkpoint import load_checkpoint, save_checkpoint
from retf_ros.data.clipstore import ClipStore, data_fingerprint
from retf_ros.device import select_device
from retf_ros.errors import RetfError
from retf_ros.evaluation.protocol import evaluate_moc
from retf_ros.fusion import R3DConfig, R3DModel, r3d_losses
from retf_ros.training.augment import Augmentation
from retf_ros.training.config import BEFORE_AUGMENTATION, TrainConfig
from retf_ros.training.dataset import TaskSpec, WindowDataset, to_device
from retf_ros.training.erank_calibration import record_distribution
from retf_ros.training.finetune import describe as describe_init, init_model_config, load_initial_weights
from retf_ros.training.prepared import PrepareSpec, PreparedCache, depth_statistics
from retf_ros.training.prior import TransitionPrior
from retf_ros.training.recipe import VALIDATION_ALPHAS, default_fps, describe, format_recipe
from retf_ros.training.state import TrainingState, load_optimizer_state, save_optimizer_state

# Options that may change when a run is resumed (they do not change what is learned).
RESUMABLE_CHANGES = ("epochs", "device", "num_workers", "threads", "cache_dir")


def changed_options(saved: dict, current: dict) -> list[str]:
    """Options that differ between a saved run's config and this one, except those a resume may
    change; a key the saved run predates counts as the value it trained with (BEFORE_AUGMENTATION)."""
    saved = {**BEFORE_AUGMENTATION, **saved}
    return sorted(k for k in set(saved) | set(current)
                  if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k))


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "retf_ros" / "prepared"


@dataclass
class Distributed:
    """This process's place in a torchrun job (world 1 when run directly)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()


def init_distributed(device_spec: str) -> tuple[Distributed, torch.device]:
    """Join the torchrun process group when WORLD_SIZE > 1; pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(), select_device(device_spec)
    dist = Distributed(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    device = select_device(device_spec)
    if device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist, device


def learning_rate(step: int, total_steps: int, base_lr: float, warmup_fraction: float) -> float:
    """Linear warm-up over the first ``warmup_fraction`` of the steps, then cosine to 0."""
    warmup = int(round(warmup_fraction * total_steps))
    if step < warmup:
        return base_lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def resolve_modalities(requested: list[str] | None, store) -> list[str]:
    available = store.modalities
    if not requested:
        return list(available)
    missing = [m for m in requested if m not in available]
    if missing:
        raise RetfError(f"{store.root}: has no {', '.join(missing)} (it has {', '.join(available)})")
    return [m for m in available if m in requested]


def _feature_dims(store, clip_id: str, modalities: list[str]) -> dict[str, int]:
    features = [m for m in modalities if m.endswith("_features")]
    if not features:
        return {}
    clip = store.load(clip_id, features)
    return {m: int(getattr(clip, m).shape[1]) for m in features}


class Trainer:
    """One `retf train` run. ``command`` is recorded in the checkpoint metadata."""

    def __init__(self, config: TrainConfig, data: str | Path, out: str | Path, command: str):
        self.config = config
        self.out = Path(out)
        self.command = command
        if config.threads:
            torch.set_num_threads(config.threads)
        self.dist, self.device = init_distributed(config.device)
        self.store = ClipStore(data)
        self.fingerprint = data_fingerprint(self.store)
        self.split = config.split or self.store.default_split
        self.train_ids = self.store.clip_ids(self.split, "train")
        self.val_ids = self.store.clip_ids(self.split, "val")
        if not self.train_ids:
            raise RetfError(f"{self.store.root}: split {self.split!r} has no training clips")
        self.modalities = resolve_modalities(config.modalities, self.store)
        self.fps = float(config.fps or default_fps(self.store.fps, config.window))
        self.recipe = describe(config, self.fps, self.store.fps, len(self.train_ids), len(self.val_ids))
        model_options = dict(config.model)
        model_options.setdefault("max_frames", max(64, config.window))
        try:
            self.model_config = R3DConfig(
                num_classes=len(self.store.classes), modalities=tuple(self.modalities),
                skeleton_layout=self.store.skeleton_layout or "kinect_v2_25",
                feature_dims=_feature_dims(self.store, self.train_ids[0], self.modalities), **model_options)
        except (TypeError, ValueError) as exc:
            raise RetfError(f"invalid model options {model_options}: {exc}") from None
        self.init = load_checkpoint(config.init) if config.init else None  # fine-tuning (training/finetune.py)
        if self.init is not None:
            self.model_config = init_model_config(self.init, self.store.classes, self.modalities, dict(config.model))
            self.modalities = list(self.model_config.modalities)
        if config.window > self.model_config.max_frames:
            raise RetfError(f"window {config.window} exceeds model.max_frames {self.model_config.max_frames}")
        self.task = TaskSpec(task=config.task, window=config.window,
                             horizon=int(round(config.horizon_s * self.fps)) if config.task == "stream" else 0,
                             num_queries=self.model_config.num_queries, none_class=len(self.store.classes),
                             alphas=tuple(config.alphas))
        self.cache = PreparedCache(self.store, config.cache_dir or default_cache_dir(),
                                   PrepareSpec.for_model(self.model_config, self.fps, self.store.skeleton_layout))
        self.prior: TransitionPrior | None = None  # fitted on the training labels once the cache is ready

    # -- metadata -------------------------------------------------------------------------
    def metadata(self, epoch: int, metrics: dict) -> dict:
        config = self.config
        return {
            "name": self.out.name,
            "task": config.task,
            "classes": list(self.store.classes),
            "modalities": list(self.modalities),
            "skeleton_layout": self.model_config.skeleton_layout,
            "fps": self.fps,
            "window": config.window,
            "horizon_s": config.horizon_s if config.task == "stream" else None,
            "alphas": list(config.alphas),
            "image_size": list(self.model_config.image_size),
            "training": {
                "command": self.command,
                "config": config.to_dict(),
                "data": str(self.store.root),
                "data_fingerprint": self.fingerprint,
                "init": None if self.init is None else {"path": str(self.init.path), "sha256": self.init.sha256},
                "split": self.split,
                "seed": config.seed,
                "epochs_done": epoch + 1,
                "world_size": self.dist.world,
                "device": str(self.device),
                "recipe": self.recipe,
            },
            "metrics": metrics,
            "anticipation": self.anticipation_metadata(metrics),
        }

    # -- pieces -----------------------------------------------------------------------------
    def _prepare_cache(self) -> None:
        if self.dist.main:
            todo = [c for c in dict.fromkeys(self.train_ids + self.val_ids) if not self.cache.is_ready(c)]
            for clip_id in tqdm(todo, desc="preparing frames", unit="clip", file=sys.stderr, disable=not todo):
                self.cache.ensure(clip_id)
        self.dist.barrier()
        self.prior = TransitionPrior.fit((self.cache.open(c).labels for c in self.train_ids), len(self.store.classes))

    def _loader(self, dataset: WindowDataset, train: bool):
        sampler = None
        if train and self.dist.active:
            sampler = DistributedSampler(dataset, num_replicas=self.dist.world, rank=self.dist.rank,
                                         shuffle=True, seed=self.config.seed)
        elif train:
            sampler = _EpochShuffle(dataset, self.config.seed)
        # No persistent workers: each worker holds a copy of the dataset made when its iterator
        # starts, so a persistent one would never see set_epoch and would draw epoch 0's windows
        # in every epoch (num_workers > 0 would then train on other data than num_workers = 0).
        return DataLoader(dataset, batch_size=self.config.batch_size, sampler=sampler, shuffle=False,
                          num_workers=self.config.num_workers, drop_last=False)

    def _check_resumable(self, saved: dict) -> None:
        saved = {**BEFORE_AUGMENTATION, **saved}
        current = self.config.to_dict()
        differs = changed_options(saved, current)
        if differs:
            detail = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in differs)
            raise RetfError(f"{self.out} holds a run with a different config ({detail}); "
                            f"train into a new --out directory to start over")

    @torch.no_grad()
    def validate(self, model, loader) -> dict:
        model.eval()
        totals: dict[str, float] = {}
        count = 0
        for batch in loader:
            batch = to_device(batch, self.device)
            losses = r3d_losses(model(batch["inputs"], batch["mask"], batch["present"]), batch)
            n = batch["mask"].shape[0]
            for key, value in losses.items():
                totals[key] = totals.get(key, 0.0) + float(value) * n
            count += n
        metrics = {f"val_{k}": v / max(count, 1) for k, v in totals.items()}
        if self.config.select_by == "val_moc":
            metrics.update(self.validation_moc(model))
        return metrics

    def validation_moc(self, model) -> dict:
        """MoC of every anticipation mode (anticipation.py) on the validation clips; the best
        mode's figure is ``val_moc`` (the selection score), the mode ``anticipation_mode``."""
        result = evaluate_moc(model, self.task, self.cache, self.val_ids or self.train_ids, self.device,
                              self.config.batch_size, alphas=VALIDATION_ALPHAS, prior=self.prior)
        by_mode = {mode: accumulator.mean() for mode, accumulator in result.modes.items()}
        best = max(by_mode, key=lambda m: (by_mode[m], m == "network"))  # a tie keeps the network alone
        return {"val_moc": by_mode[best], "val_moc_table": result.modes[best].table(),
                "val_moc_modes": by_mode, "anticipation_mode": best}

    def anticipation_metadata(self, metrics: dict) -> dict:
        """Checkpoint metadata ``anticipation``: the mode `retf eval` applies and the prior it needs."""
        return {"mode": metrics.get("anticipation_mode", "network"), "prior": self.prior.to_dict(),
                "val_moc_modes": metrics.get("val_moc_modes")}

    def score(self, metrics: dict) -> float:
        """Higher is better."""
        if self.config.select_by == "val_moc":
            return metrics["val_moc"]
        return -metrics["val_total"]

    # -- the loop ---------------------------------------------------------------------------
    def run(self, stop_after_epoch: int | None = None) -> Path:
        """Train (or resume) to ``config.epochs``; returns the best checkpoint's weights path.

        ``stop_after_epoch``: return once that epoch is done (the run stays resumable), for jobs
        cut into time slices; the schedule still spans ``config.epochs``.
        """
        config = self.config
        if self.dist.main:
            print(format_recipe(self.recipe), file=sys.stderr)
        self._prepare_cache()
        train_set, val_set = self._datasets()
        train_loader = self._loader(train_set, train=True)
        val_loader = self._loader(val_set, train=False)
        torch.manual_seed(config.seed)
        model = self._build_model()
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        state = self._start_or_resume(model, optimizer)
        train_model = self._distributed(model)
        best_path = self.out / "best.safetensors"
        last_epoch = config.epochs if stop_after_epoch is None else min(config.epochs, stop_after_epoch)
        for epoch in range(state.epoch, last_epoch):
            started = time.time()
            train_loss = self._train_epoch(train_model, model, optimizer, train_loader, state, epoch)
            state.epoch = epoch + 1
            if self.dist.main:
                metrics = {"epoch": epoch + 1, "train_loss": train_loss, **self.validate(model, val_loader)}
                metrics["epoch_s"] = round(time.time() - started, 2)
                self._save_epoch(model, optimizer, state, epoch, metrics, best_path)
            self.dist.barrier()
        if self.dist.active:
            torch.distributed.destroy_process_group()
        if self.dist.main and state.epoch >= config.epochs:
            self._record_erank_distribution(best_path)
        return best_path

    def _datasets(self) -> tuple[WindowDataset, WindowDataset]:
        """Training and validation windows (validation on the training clips when the split has none)."""
        config = self.config
        train_set = WindowDataset(self.cache, self.train_ids, self.task, config.samples_per_clip, train=True,
                                  seed=config.seed, augmentation=Augmentation.from_config(config))
        val_ids = self.val_ids or self.train_ids
        val_set = WindowDataset(self.cache, val_ids, self.task, config.val_samples_per_clip, train=False,
                                seed=config.seed)
        if len(train_set) == 0:
            raise RetfError(f"no training sample: every training clip is shorter than the horizon "
                            f"({self.task.horizon} frames at {self.fps} fps)")
        if train_set.skipped and self.dist.main:
            print(f"retf train: skipped {len(train_set.skipped)} clip(s) shorter than the horizon", file=sys.stderr)
        return train_set, val_set

    def _build_model(self):
        """The R3DModel on the device, with the --init checkpoint's weights when fine-tuning."""
        try:
            model = R3DModel(self.model_config).to(self.device)
        except (ValueError, ImportError) as exc:
            raise RetfError(f"cannot build the model from the options {self.config.model}: {exc}") from None
        if self.init is not None:
            fresh = load_initial_weights(model, self.init, self.store.classes)
            if self.dist.main:
                print(describe_init(self.init, fresh), file=sys.stderr)
        return model

    def _start_or_resume(self, model, optimizer) -> TrainingState:
        """A fresh state (rank 0 sets the depth statistics of the training clips), or the saved
        run's model, optimizer and state when the run directory holds one."""
        config = self.config
        state = TrainingState(epoch=0, step=0, best_score=-math.inf, extra={})
        self.out.mkdir(parents=True, exist_ok=True)
        if (self.out / "last.optim.json").exists():
            state = load_optimizer_state(self.out / "last.optim", optimizer)
            self._check_resumable(state.extra.get("config", {}))
            model.load_state_dict(load_file(str(self.out / "last.safetensors"), device=str(self.device)))
            if self.dist.main:
                print(f"retf train: {self.out} already finished {state.epoch} epochs" if state.epoch >= config.epochs
                      else f"retf train: resuming {self.out} at epoch {state.epoch + 1}/{config.epochs}", file=sys.stderr)
        elif model.depth_standardiser is not None and self.dist.main:
            # Other ranks receive the buffers from rank 0 when DistributedDataParallel wraps the model.
            mean, std = depth_statistics(self.cache, self.train_ids)
            model.depth_standardiser.set_statistics(torch.from_numpy(mean), torch.from_numpy(std))
        return state

    def _distributed(self, model):
        """The module the optimiser steps go through: ``model`` itself, or it wrapped in
        DistributedDataParallel under torchrun."""
        if not self.dist.active:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    def _train_epoch(self, train_model, model, optimizer, loader, state: TrainingState, epoch: int) -> float:
        """One epoch of optimiser steps (learning-rate schedule over all epochs); the mean loss."""
        config = self.config
        total_steps = config.epochs * len(loader)
        loader.dataset.set_epoch(epoch)
        loader.sampler.set_epoch(epoch)
        torch.manual_seed(config.seed * 100003 + epoch * 101 + self.dist.rank)  # dropout masks
        train_model.train()
        running, seen = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                   file=sys.stderr, disable=not self.dist.main, leave=False)
        for batch in bar:
            lr = learning_rate(state.step, total_steps, config.lr, config.warmup_fraction)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = to_device(batch, self.device)
            losses = r3d_losses(train_model(batch["inputs"], batch["mask"], batch["present"]), batch)
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            state.step += 1
            running += float(losses["total"].detach())
            seen += 1
            bar.set_postfix(loss=f"{running / seen:.3f}", lr=f"{lr:.1e}")
        bar.close()
        return running / max(seen, 1)

    def _save_epoch(self, model, optimizer, state: TrainingState, epoch: int, metrics: dict, best_path: Path) -> None:
        """Rank 0 after an epoch: keep the best checkpoint, save the resumable last one, log the metrics."""
        config = self.config
        score = self.score(metrics)
        if score > state.best_score or not best_path.exists():
            state.best_score = score
            save_checkpoint(self.out / "best", model, self.metadata(epoch, metrics))
            metrics["best"] = True
        save_checkpoint(self.out / "last", model, self.metadata(epoch, metrics))
        state.extra = {"config": config.to_dict()}
        save_optimizer_state(self.out / "last.optim", optimizer, state)
        with open(self.out / "log.jsonl", "a") as log:
            log.write(json.dumps(metrics) + "\n")
        shown = {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}
        mode = f" anticipation {metrics['anticipation_mode']}" if "anticipation_mode" in metrics else ""
        print(f"retf train: epoch {epoch + 1}/{config.epochs} {shown}{mode}", file=sys.stderr)

    def _record_erank_distribution(self, best_path: Path) -> None:
        """Store the best checkpoint's erank distribution on the validation split in its metadata:
        the node's erank health thresholds default to it (training/erank_calibration.py). Only
        stream checkpoints on raw frames stream through the node's predictor."""
        if self.config.task != "stream" or self.model_config.feature_dims:
            return
        part = "val" if self.val_ids else "train"
        record_distribution(best_path, self.store, self.split, part, self.command, device=str(self.device),
                            progress=False)


class _EpochShuffle(torch.utils.data.Sampler):
    """A permutation per epoch from (seed, epoch): a resumed run sees the same order."""

    def __init__(self, dataset, seed: int):
        self.size = len(dataset)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())
