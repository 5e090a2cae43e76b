"""Checkpoints: safetensors weights + a JSON metadata file. Never unpickled.

A checkpoint ``NAME`` is the pair ``NAME.safetensors`` (the model's state dict) and
``NAME.json`` (format tag, model config, class names, modalities, input sizes, joint layout,
fps, window, horizon, training provenance, metrics, and the weights' sha256). A checkpoint
from a stranger cannot run code: safetensors holds only tensors, JSON only data.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from retf_ros.errors import CheckpointError
from retf_ros.fusion.model import R3DConfig, R3DModel

FORMAT = "retf_ros/checkpoint/v1"
REQUIRED_METADATA = ("classes", "modalities", "model_config")
_PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol 2+ / torch.save zip archives
# Names torch.save / pickle files usually carry: refused by name, before anything is opened.
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt")
PICKLE_REFUSAL = ("retf_ros never loads pickles (torch.save .pt/.pth files are pickles, and unpickling a file "
                  "can run arbitrary code); give a .safetensors + .json checkpoint as `retf train` writes it")


@dataclass
class LoadedCheckpoint:
    model: R3DModel
    metadata: dict
    sha256: str
    path: Path  # the .safetensors file

    @property
    def name(self) -> str:
        return self.metadata.get("name") or self.path.stem

    @property
    def classes(self) -> list[str]:
        return list(self.metadata["classes"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path]:
    """Map what a user may pass (run directory, NAME, NAME.safetensors, NAME.json) to
    (weights, metadata) paths. A run directory means its ``best`` checkpoint, else ``last``."""
    p = Path(path).expanduser()
    if p.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(f"{p}: a {p.suffix} file is a pickle checkpoint, refused: {PICKLE_REFUSAL}")
    if p.is_dir():
        for stem in ("best", "last"):
            if (p / f"{stem}.safetensors").exists():
                p = p / stem
                break
        else:
            raise CheckpointError(f"{p} is a directory without best.safetensors or last.safetensors")
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    weights, meta = p.with_suffix(".safetensors"), p.with_suffix(".json")
    if not weights.exists():
        raise CheckpointError(f"checkpoint weights not found: {weights}")
    if not meta.exists():
        raise CheckpointError(f"checkpoint metadata not found: {meta} (every checkpoint is a "
                              f".safetensors + .json pair)")
    return weights, meta


def save_checkpoint(path: str | Path, model: R3DModel, metadata: dict) -> Path:
    """Write ``path.safetensors`` + ``path.json``; returns the weights path.

    ``metadata`` should carry classes, modalities, fps, window, horizon_s, image_size,
    skeleton_layout, training provenance and metrics; the model config, format tag and
    weights sha256 are added here.
    """
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    p.parent.mkdir(parents=True, exist_ok=True)
    weights = p.with_suffix(".safetensors")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(weights), metadata={"format": FORMAT})
    meta = dict(metadata)
    meta.setdefault("classes", [str(i) for i in range(model.config.num_classes)])
    meta.setdefault("modalities", list(model.config.modalities))
    meta.update(format=FORMAT, model_config=model.config.to_dict(), weights_sha256=_sha256(weights))
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    tmp.replace(p.with_suffix(".json"))
    return weights


def read_metadata(path: str | Path) -> dict:
    """The JSON metadata of a checkpoint, validated, without loading weights."""
    _, meta_path = resolve_checkpoint(path)
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint metadata {meta_path} is not readable JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint metadata {meta_path} must be a JSON object")
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise CheckpointError(f"checkpoint metadata {meta_path} lacks {missing}")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {meta_path} has format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Load a checkpoint into an R3DModel in eval mode on ``device``.

    Raises CheckpointError (one clear sentence) for a missing, pickled, corrupt or inconsistent
    checkpoint; nothing in it is ever executed.
    """
    weights, _ = resolve_checkpoint(path)
    meta = read_metadata(weights)
    with weights.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(_PICKLE_MAGIC):
        raise CheckpointError(f"{weights} is a pickle/torch.save file: {PICKLE_REFUSAL}")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights} is not a valid safetensors file: {exc}") from None
    try:
        config = R3DConfig.from_dict(meta["model_config"])
        model = R3DModel(config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {weights} has an invalid model_config: {exc}") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise CheckpointError(f"weights in {weights} do not match its model_config "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]})")
    model.load_state_dict(state)
    sha = _sha256(weights)
    recorded = meta.get("weights_sha256")
    if recorded and recorded != sha:
        raise CheckpointError(f"{weights} does not match the sha256 recorded in its metadata (file changed?)")
    return LoadedCheckpoint(model=model.to(device).eval(), metadata=meta, sha256=sha, path=weights)


def load_backbone_weights(model: R3DModel, path: str | Path | None = None) -> None:
    """Fill a torchvision RGB backbone from a safetensors state dict (``model_config``'s
    ``rgb_backbone_weights`` unless ``path`` is given). Used once before training."""
    source = path or model.config.rgb_backbone_weights
    encoder = model.encoders["rgb"] if "rgb" in model.encoders else None
    if source is None or encoder is None or not hasattr(encoder, "backbone"):
        raise CheckpointError("load_backbone_weights needs a torchvision RGB encoder and a weights file")
    try:
        state = load_file(str(source))
    except Exception as exc:  # safetensors raises several types for unreadable files
        raise CheckpointError(f"backbone weights {source} are not a readable safetensors file: {exc}") from None
    missing, unexpected = encoder.backbone.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing:
        raise CheckpointError(f"backbone weights {source} lack {missing[:3]} (expected {model.config.rgb_encoder})")
