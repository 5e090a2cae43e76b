"""The options of `retf train`: one dataclass, filled from defaults < config YAML < command line.

config/train_synth.yaml documents every key. ``model`` holds ``R3DConfig`` fields (everything
except what the data decides: number of classes, modalities, joint layout, feature sizes).
"""
from __future__ import annotations

import dataclasses
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from retf_ros.errors import RetfError

SELECT_BY = ("val_loss", "val_moc")


@dataclass
class TrainConfig:
    split: str | None = None            # clip store split; None = the store's default split
    modalities: list[str] | None = None  # None = every modality the data has
    task: str = "stream"                # "stream" (the node) or "protocol" (docs/method.md section 6)
    fps: float | None = None            # model frame rate; None = the data's, capped so the window spans 3.2 s
    window: int = 32                    # observed frames W (<= model.max_frames)
    horizon_s: float = 4.0              # stream task: anticipated seconds
    alphas: list[float] = field(default_factory=lambda: [0.2, 0.3, 0.5])  # protocol task ratios
    epochs: int = 30
    warmup_fraction: float = 1 / 6      # authors: 10 warm-up epochs of 60, scaled to `epochs`
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 5e-3
    grad_clip: float = 1.0              # max gradient norm; 0 = off
    seed: int = 1
    device: str = "auto"                # auto | cpu | cuda | cuda:N (torchrun: cuda:LOCAL_RANK)
    samples_per_clip: int = 16          # training windows drawn per clip and epoch
    val_samples_per_clip: int = 4       # fixed validation windows per clip (stream task)
    select_by: str = "val_moc"          # best checkpoint by "val_moc" (with the anticipation mode) or "val_loss"
    # Training augmentation (training/augment.py); 0 / false = off, the default: on the stand-in
    # stores it did not raise the validation MoC (docs/training.md). Tried: 30 / 0.1 / 0.01 / 0.2.
    augment_rotation_deg: float = 0.0   # skeleton: rotation about the vertical axis, uniform in +- this
    augment_scale: float = 0.0          # skeleton: scale factor uniform in 1 +- this
    augment_joint_noise: float = 0.0    # skeleton: Gaussian joint noise, sd in torso lengths
    augment_speed: float = 0.0          # every modality: playback speed uniform in 1 +- this
    random_ratios: bool = False         # protocol task: alpha uniform in [min, max] of `alphas`
    num_workers: int = 0                # DataLoader workers
    threads: int | None = None          # torch CPU threads; None = torch's default
    cache_dir: str | None = None        # prepared-frame cache; None = ~/.cache/retf_ros/prepared
    model: dict = field(default_factory=dict)  # R3DConfig overrides (dim, image_size, fusion, ...)
    init: str | None = None             # checkpoint to start from (fine-tuning, training/finetune.py)

    def validate(self) -> None:
        if self.task not in ("stream", "protocol"):
            raise RetfError(f"task must be 'stream' or 'protocol', got {self.task!r}")
        if self.select_by not in SELECT_BY:
            raise RetfError(f"select_by must be one of {', '.join(SELECT_BY)}, got {self.select_by!r}")
        for name in ("window", "epochs", "batch_size", "samples_per_clip", "val_samples_per_clip"):
            if getattr(self, name) < 1:
                raise RetfError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.task == "stream" and self.horizon_s <= 0:
            raise RetfError(f"horizon_s must be > 0, got {self.horizon_s}")
        for name in ("augment_rotation_deg", "augment_scale", "augment_joint_noise", "augment_speed"):
            if getattr(self, name) < 0:
                raise RetfError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.augment_scale < 1 or not self.augment_speed < 1:
            raise RetfError("augment_scale and augment_speed must be < 1 (a factor of 1 +- it stays positive)")
        if not 0 <= self.warmup_fraction < 1:
            raise RetfError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        for forbidden in ("num_classes", "modalities", "skeleton_layout", "feature_dims"):
            if forbidden in self.model:
                raise RetfError(f"model.{forbidden} comes from the data and cannot be set in the config")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Values that train as every run did before the key existed: a run saved without the key resumes
# only with these (trainer.py).
BEFORE_AUGMENTATION = {"augment_rotation_deg": 0.0, "augment_scale": 0.0, "augment_joint_noise": 0.0,
                       "augment_speed": 0.0, "random_ratios": False}


def load_config(path: str | Path | None, overrides: dict) -> TrainConfig:
    """Defaults, then the YAML file ``path`` (if any), then ``overrides`` (None values skipped).

    Keys ``model.<field>`` in ``overrides`` go into the ``model`` dict.
    """
    values: dict = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise RetfError(f"cannot read config {path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise RetfError(f"config {path} must be a mapping of option: value")
        values.update(loaded)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise RetfError(f"config {path}: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    model = dict(values.pop("model", None) or {})
    for key, value in overrides.items():
        if value is None:
            continue
        if key.startswith("model."):
            model[key.removeprefix("model.")] = value
        else:
            values[key] = value
    config = TrainConfig(**values, model=model)
    config.validate()
    return config


def invoked_command() -> str:
    """The command line as the user typed it (recorded in checkpoint metadata)."""
    return " ".join(["retf", *(shlex.quote(a) for a in sys.argv[1:])])
