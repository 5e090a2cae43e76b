"""The default training recipe of `retf train` (issue 17): what `retf train --data DIR --out RUN`
decides without options, and the record of it printed at the start of training and kept in
the checkpoint metadata (``training.recipe``).

- Frame rate: the store's, capped so that the default window spans at least
  ``MIN_WINDOW_SPAN_S`` seconds. A 32-frame window at 30 fps sees one second, too little to
  tell how far an action has progressed and what preceded it; at 10 fps it sees 3.2 s.
  Measured on UTKinect-format stores (docs/training.md): MoC at alpha 0.2 went from level with
  the model-free prior at 30 fps to about twice it at 10 fps.
- Model selection on the validation MoC (not the loss), over more observation ratios than
  the test protocol's two (``VALIDATION_ALPHAS``), so that the two validation videos of a
  small dataset give ten scored windows instead of four; each epoch also chooses the
  anticipation mode (anticipation.py: the network alone or combined with the transition
  prior of the training split) by the same score.
- Augmentation (augment.py: skeleton rotation / scale / joint noise, speed change, random
  observation ratios) is recorded here but off by default: on the UTKinect-format and small
  synthetic stores it did not raise the validation MoC (docs/training.md).
"""
from __future__ import annotations

from retf_ros.training.augment import Augmentation, describe as describe_augmentation

MIN_WINDOW_SPAN_S = 3.2
VALIDATION_ALPHAS = (0.15, 0.2, 0.25, 0.3, 0.35)


def default_fps(store_fps: float, window: int) -> float:
    """The model frame rate when none is configured: the store's, at most window / 3.2 s."""
    return float(min(store_fps, window / MIN_WINDOW_SPAN_S))


def describe(config, fps: float, store_fps: float, train_clips: int, val_clips: int) -> dict:
    """The settings a run trains with (JSON-ready), for the log and the checkpoint metadata."""
    chosen = "configured" if config.fps else (
        "the store's" if fps == store_fps else f"capped from the store's {store_fps:g} so the window spans "
                                              f"{config.window / fps:.1f} s")
    return {
        "fps": fps, "fps_source": chosen, "window": config.window, "task": config.task,
        "horizon_s": config.horizon_s if config.task == "stream" else None,
        "select_by": config.select_by,
        "validation_alphas": list(VALIDATION_ALPHAS) if config.select_by == "val_moc" else None,
        "epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr,
        "weight_decay": config.weight_decay, "samples_per_clip": config.samples_per_clip,
        "model": dict(config.model), "train_clips": train_clips, "val_clips": val_clips,
        "augmentation": describe_augmentation(Augmentation.from_config(config)),
    }


def format_recipe(recipe: dict) -> str:
    """One line per group of settings, printed by `retf train` before the first epoch."""
    selection = (f"best validation MoC over alphas {recipe['validation_alphas']} (network alone or with the "
                 f"transition prior)" if recipe["select_by"] == "val_moc" else "lowest validation loss")
    task = (f"stream, horizon {recipe['horizon_s']:g} s" if recipe["task"] == "stream" else "protocol")
    return "\n".join([
        f"retf train: recipe: {recipe['train_clips']} training / {recipe['val_clips']} validation clips; "
        f"{task}; fps {recipe['fps']:g} ({recipe['fps_source']}), window {recipe['window']}",
        f"retf train: recipe: {recipe['epochs']} epochs x {recipe['samples_per_clip']} windows per clip, batch "
        f"{recipe['batch_size']}, AdamW lr {recipe['lr']:g} weight decay {recipe['weight_decay']:g}; "
        f"model overrides {recipe['model'] or 'none'}",
        f"retf train: recipe: selection by {selection}",
        f"retf train: recipe: augmentation {format_augmentation(recipe['augmentation'], recipe['task'])}"])


def format_augmentation(augmentation: dict, task: str) -> str:
    parts = []
    if augmentation["skeleton_rotation_deg"]:
        parts.append(f"skeleton rotation about the vertical +-{augmentation['skeleton_rotation_deg']:g} deg")
    if augmentation["skeleton_scale"]:
        parts.append(f"scale 1+-{augmentation['skeleton_scale']:g}")
    if augmentation["skeleton_joint_noise"]:
        parts.append(f"joint noise sd {augmentation['skeleton_joint_noise']:g} torso")
    if augmentation["speed_change"]:
        parts.append(f"speed 1+-{augmentation['speed_change']:g}")
    if augmentation["random_observation_ratios"] and task == "protocol":
        parts.append("random observation ratios")
    return ", ".join(parts) or "none"
