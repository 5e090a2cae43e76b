"""`retf train --init CHECKPOINT`: start from a trained model instead of random weights.

The model keeps the checkpoint's architecture, modalities and joint layout (the data's joints
are converted to it by name, as for inference); encoders, fuser and temporal model start from
its weights. The class heads (``class_head``, ``segmentation_head``) are rebuilt when the data's
class list differs from the checkpoint's; with the same list they are kept too. Model options
given in the training config (``model:``) apply on top, e.g. ``dropout``; one that changes a
weight's shape leaves that weight freshly initialised, and the run prints which.
"""
from __future__ import annotations

import dataclasses

from retf_ros.errors import RetfError

CLASS_HEADS = ("class_head.", "segmentation_head.")


def init_model_config(loaded, classes: list[str], data_modalities: list[str], overrides: dict):
    """The R3DConfig to fine-tune ``loaded`` (a LoadedCheckpoint) on data with ``classes``."""
    config = loaded.model.config
    missing = [m for m in config.modalities if m not in data_modalities]
    if missing:
        raise RetfError(f"--init {loaded.path}: the checkpoint uses {', '.join(config.modalities)} but the data "
                        f"has no {', '.join(missing)}")
    try:
        return dataclasses.replace(config, num_classes=len(classes), **overrides)
    except (TypeError, ValueError) as exc:
        raise RetfError(f"--init {loaded.path}: invalid model options {overrides}: {exc}") from None


def load_initial_weights(model, loaded, classes: list[str]) -> list[str]:
    """Copy the checkpoint's weights into ``model``; returns the names left freshly initialised."""
    same_classes = list(loaded.metadata.get("classes") or []) == list(classes)
    source = loaded.model.state_dict()
    target = model.state_dict()
    fresh = []
    for name, tensor in target.items():
        kept = name in source and source[name].shape == tensor.shape
        if kept and (same_classes or not name.startswith(CLASS_HEADS)):
            tensor.copy_(source[name])
        else:
            fresh.append(name)
    return fresh


def describe(loaded, fresh: list[str]) -> str:
    heads = sorted({name.split(".")[0] for name in fresh})
    return (f"retf train: initialised from {loaded.path} (sha256 {loaded.sha256[:12]})"
            + (f"; rebuilt: {', '.join(heads)}" if heads else "; every weight kept"))
