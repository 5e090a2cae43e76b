"""Optimizer state for resumable runs, in safetensors + JSON (never pickle).

``torch.save`` of an optimizer would pickle it; instead the per-parameter tensors
(AdamW's ``step``, ``exp_avg``, ``exp_avg_sq``) go into ``PATH.safetensors`` under keys
``state.<param index>.<name>`` and everything else (param groups, epoch, global step, the
run's config) into ``PATH.json``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from retf_ros.errors import CheckpointError

FORMAT = "retf_ros/optimizer-state/v1"


@dataclass
class TrainingState:
    """Where a run stopped: the next epoch to run, the optimizer steps done, the best score."""

    epoch: int
    step: int
    best_score: float
    extra: dict


def _with_ending(stem: Path, ending: str) -> Path:
    """``stem`` + ending (not ``with_suffix``: a stem like ``last.optim`` keeps its dot part)."""
    return stem.with_name(stem.name + ending)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_optimizer_state(stem: str | os.PathLike, optimizer: torch.optim.Optimizer,
                         state: TrainingState) -> None:
    """Write ``stem.safetensors`` (tensors) and ``stem.json`` (groups, progress), atomically."""
    stem = Path(stem)
    full = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for index, entries in full["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()}
              for group in full["param_groups"]]
    tmp = _with_ending(stem, ".safetensors.tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, _with_ending(stem, ".safetensors"))
    document = {"format": FORMAT, "param_groups": groups, "scalars": scalars,
                "epoch": state.epoch, "step": state.step, "best_score": state.best_score,
                "extra": state.extra}
    _atomic_write_text(_with_ending(stem, ".json"), json.dumps(document, indent=1))


def load_optimizer_state(stem: str | os.PathLike, optimizer: torch.optim.Optimizer) -> TrainingState:
    """Restore ``optimizer`` from ``stem.*`` and return where the run stopped."""
    stem = Path(stem)
    json_path, tensor_path = _with_ending(stem, ".json"), _with_ending(stem, ".safetensors")
    try:
        document = json.loads(json_path.read_text())
        tensors = load_file(str(tensor_path))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read optimizer state {stem}.*: {exc}") from exc
    if document.get("format") != FORMAT:
        raise CheckpointError(f"{json_path} is not a {FORMAT} file (format={document.get('format')!r})")
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for index, entries in document["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in group.items()}
              for group in document["param_groups"]]
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"optimizer state {stem}.* does not match this model: {exc}") from exc
    return TrainingState(epoch=int(document["epoch"]), step=int(document["step"]),
                         best_score=float(document["best_score"]), extra=document.get("extra", {}))
