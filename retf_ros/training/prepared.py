"""Clips resampled to the model frame rate and run through ``retf_ros.fusion.inputs`` once,
cached on disk, so training epochs read small float16 arrays instead of decoding npz files.

Layout: ``CACHE/<clip id>-<key>/`` holding ``labels.npy`` (N,) int64, and per modality
``<modality>.npy`` (N, ...) float16 plus ``<modality>.present.npy`` (N,) bool. ``key`` hashes
everything the arrays depend on (clip file size and mtime, fps, input sizes, joint layout and
the source of ``retf_ros/fusion/inputs.py`` and ``skeleton.py``), so a changed clip or a changed
preprocessing never reuses stale arrays. The modalities are not part of the key: a run on a
subset of modalities reuses the files of a run on all of them, and a missing modality is added
to an existing entry. Arrays are opened memory-mapped: a window reads only its own frames, and
the page cache (not this process) decides what stays in memory, so large datasets stream. Each
file is written under a temporary name and renamed, so concurrent runs (ablations, torchrun
ranks) sharing a cache never see half-written arrays.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from retf_ros.fusion import inputs, skeleton
from retf_ros.fusion.inputs import prepare_depth, prepare_rgb, prepare_skeleton
from retf_ros.training.windows import resample_indices

CHUNK = 128  # frames per preprocessing call: bounds the float32 temporaries


@dataclass(frozen=True)
class PrepareSpec:
    """What the prepared arrays depend on besides the clip itself."""

    modalities: tuple[str, ...]
    fps: float
    image_size: tuple[int, int]   # (h, w) of RGB model inputs
    depth_size: tuple[int, int]   # (h, w) of depth model inputs
    skeleton_layout: str          # the model's joint layout
    source_layout: str | None     # the clip store's joint layout (None = the same)

    @classmethod
    def for_model(cls, config, fps: float, source_layout: str | None) -> "PrepareSpec":
        """The inputs an ``R3DConfig`` consumes at ``fps``, from a store in ``source_layout``."""
        size = tuple(config.image_size)
        return cls(modalities=tuple(config.modalities), fps=float(fps), image_size=size, depth_size=size,
                   skeleton_layout=config.skeleton_layout, source_layout=source_layout)


@dataclass
class PreparedClip:
    """One clip at the model frame rate. ``inputs[m]``: (N, ...) float16 memmap;
    ``present[m]``: (N,) bool (False where the sensor had nothing: an all-NaN skeleton, a
    depth frame without a valid pixel); ``labels``: (N,) int64."""

    clip_id: str
    labels: np.ndarray
    inputs: dict[str, np.ndarray]
    present: dict[str, np.ndarray]

    @property
    def num_frames(self) -> int:
        return len(self.labels)


@lru_cache(maxsize=1)
def _preprocessing_source_hash() -> str:
    text = inspect.getsource(inputs) + inspect.getsource(skeleton)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cache_key(clip_path: Path, spec: PrepareSpec) -> str:
    stat = clip_path.stat()
    document = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "path": str(clip_path.resolve()),
                "spec": [spec.fps, list(spec.image_size), list(spec.depth_size), spec.skeleton_layout,
                         spec.source_layout],
                "code": _preprocessing_source_hash()}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]


def _safe_name(clip_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in clip_id)


def _prepare_chunked(fn, frames: np.ndarray, idx: np.ndarray, *args) -> np.ndarray:
    """Run one ``prepare_*`` over the frames ``idx`` in chunks; float16 (N, ...)."""
    parts = [fn(frames[idx[i:i + CHUNK]], *args).numpy().astype(np.float16)
             for i in range(0, len(idx), CHUNK)]
    return np.concatenate(parts, axis=0)


def _frame_presence(modality: str, frames: np.ndarray, idx: np.ndarray) -> np.ndarray:
    picked = frames[idx]
    if modality == "skeleton":
        return ~np.isnan(picked).reshape(len(idx), -1).all(axis=1)
    if modality == "depth":
        flat = picked.reshape(len(idx), -1)
        return (flat > 0).any(axis=1) if flat.dtype.kind in "ui" else (np.isfinite(flat) & (flat > 0)).any(axis=1)
    return np.ones(len(idx), dtype=bool)


def build_prepared(clip, spec: PrepareSpec, modalities: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Arrays of one clip (a ``retf_ros.data`` Clip): labels, prepared inputs and presence of
    ``modalities`` (default: the spec's)."""
    idx = resample_indices(np.asarray(clip.stamps), spec.fps)
    arrays = {"labels": np.asarray(clip.labels, dtype=np.int64)[idx]}
    for modality in spec.modalities if modalities is None else modalities:
        frames = getattr(clip, modality)
        if frames is None:
            raise KeyError(modality)
        if modality == "rgb":
            arrays[modality] = _prepare_chunked(prepare_rgb, frames, idx, spec.image_size)
        elif modality == "depth":
            arrays[modality] = _prepare_chunked(prepare_depth, frames, idx, spec.depth_size)
        elif modality == "skeleton":
            arrays[modality] = _prepare_chunked(prepare_skeleton, frames, idx, spec.skeleton_layout,
                                                spec.source_layout)
        else:  # precomputed per-frame features (FUTR/R3D folders) go to the model as they are
            arrays[modality] = np.asarray(frames[idx], dtype=np.float16)
        arrays[f"{modality}.present"] = _frame_presence(modality, frames, idx)
    return arrays


class PreparedCache:
    """Prepared clips of one clip store under ``cache_dir`` (created on demand)."""

    def __init__(self, store, cache_dir: str | os.PathLike, spec: PrepareSpec):
        self.store = store
        self.dir = Path(cache_dir)
        self.spec = spec

    def _entry(self, clip_id: str) -> Path:
        clip_path = self.store.clip_path(clip_id)
        return self.dir / f"{_safe_name(clip_id)}-{_cache_key(clip_path, self.spec)}"

    def _missing(self, entry: Path) -> list[str]:
        return [m for m in self.spec.modalities if not (entry / f"{m}.present.npy").is_file()]

    def is_ready(self, clip_id: str) -> bool:
        entry = self._entry(clip_id)
        return (entry / "labels.npy").is_file() and not self._missing(entry)

    def ensure(self, clip_id: str) -> Path:
        """Prepare the spec's modalities of ``clip_id`` that the entry lacks; returns the entry."""
        entry = self._entry(clip_id)
        missing = self._missing(entry)
        if (entry / "labels.npy").is_file() and not missing:
            return entry
        entry.mkdir(parents=True, exist_ok=True)
        arrays = build_prepared(self.store.load(clip_id, missing), self.spec, tuple(missing))
        # labels last: its presence marks an entry whose other files are complete
        for name in sorted(arrays, key=lambda n: n == "labels"):
            handle, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".npy", dir=entry)
            with os.fdopen(handle, "wb") as fh:
                np.save(fh, arrays[name])
            os.replace(tmp, entry / f"{name}.npy")
        return entry

    def open(self, clip_id: str) -> PreparedClip:
        """The prepared clip, memory-mapped (prepares it first when needed)."""
        entry = self.ensure(clip_id)
        inputs = {m: np.load(entry / f"{m}.npy", mmap_mode="r") for m in self.spec.modalities}
        present = {m: np.load(entry / f"{m}.present.npy") for m in self.spec.modalities}
        return PreparedClip(clip_id, np.load(entry / "labels.npy"), inputs, present)


DEPTH_STD_FLOOR = 0.01  # in metres / 5, i.e. 5 cm: a pixel that never changed is not amplified beyond this


def depth_statistics(cache: PreparedCache, clip_ids: list[str], max_frames: int = 20000
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean and std (h, w) of the valid (> 0) prepared depth of ``clip_ids``, for the
    model's PixelStandardiser. Reads every k-th frame of every clip, k chosen so that at most
    ``max_frames`` are read (deterministic); pixels never valid get mean 0, std 1."""
    clips = [cache.open(c) for c in clip_ids]
    total = sum(c.num_frames for c in clips)
    stride = max(1, -(-total // max_frames))
    size = cache.spec.depth_size
    count, total_sum, total_sq = (np.zeros(size) for _ in range(3))
    for clip in clips:
        frames = np.asarray(clip.inputs["depth"][::stride], dtype=np.float64).reshape(-1, *size)
        valid = frames > 0
        count += valid.sum(0)
        total_sum += np.where(valid, frames, 0.0).sum(0)
        total_sq += np.where(valid, frames * frames, 0.0).sum(0)
    seen = count > 0
    mean = total_sum / np.maximum(count, 1)
    std = np.sqrt(np.clip(total_sq / np.maximum(count, 1) - mean * mean, 0.0, None))
    return mean.astype(np.float32), np.where(seen, np.maximum(std, DEPTH_STD_FLOOR), 1.0).astype(np.float32)
