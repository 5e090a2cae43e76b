"""The clip store: one on-disk format for synthetic data, imported datasets and bags.

Layout (docs/data.md)::

    DIR/meta.json                 fps, modalities, skeleton layout, source, default split, ...
    DIR/mapping.txt               "<id> <label>" per line, ids 0..K-1 in order
    DIR/clips/<clip>.npz          one clip: per-frame arrays, never pickled objects
    DIR/splits/<name>/{train,val,test}.txt   clip ids, one per line

Clips load one at a time (``ClipStore.load``), so nothing holds a whole dataset in memory.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable

import numpy as np

from retf_ros.errors import DataFormatError

FORMAT = "retf_ros/clipstore/v1"
PARTS = ("train", "val", "test")

# npz key -> (dtype kind the array must have, number of dimensions). Every per-frame array
# has the frame axis first, of the same length T as ``stamps``.
ARRAY_SPECS: dict[str, tuple[np.dtype, int]] = {
    "stamps": (np.dtype(np.float64), 1),          # (T,) seconds
    "labels": (np.dtype(np.int64), 1),            # (T,) class id
    "rgb": (np.dtype(np.uint8), 4),               # (T, H, W, 3)
    "depth": (np.dtype(np.uint16), 3),            # (T, H, W) millimetres, 0 = invalid
    "skeleton": (np.dtype(np.float32), 3),        # (T, J, 3) metres, NaN = missing
    "skeletons": (np.dtype(np.float32), 4),       # (T, P, J, 3) every tracked body
    "rgb_features": (np.dtype(np.float32), 2),    # (T, D) precomputed frame features
    "depth_features": (np.dtype(np.float32), 2),  # (T, D)
}
# Not per frame: the pinhole intrinsics of the camera the images come from (3, 3).
INTRINSICS_KEY = "intrinsics"
# The modalities a model can consume (stamps/labels are not modalities; ``skeletons`` is
# the all-bodies companion of ``skeleton``).
MODALITY_KEYS = ("rgb", "depth", "skeleton", "rgb_features", "depth_features")


@dataclass
class Clip:
    """One continuous recording. Arrays share the frame axis T (see ARRAY_SPECS)."""

    clip_id: str
    stamps: np.ndarray
    labels: np.ndarray
    rgb: np.ndarray | None = None
    depth: np.ndarray | None = None
    skeleton: np.ndarray | None = None
    skeletons: np.ndarray | None = None
    rgb_features: np.ndarray | None = None
    depth_features: np.ndarray | None = None
    intrinsics: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(len(self.stamps))

    @property
    def modalities(self) -> list[str]:
        return [key for key in MODALITY_KEYS if getattr(self, key) is not None]

    def arrays(self) -> dict[str, np.ndarray]:
        """The non-empty arrays by npz key."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "clip_id" and value is not None:
                out[f.name] = value
        return out


def _check_arrays(arrays: dict[str, np.ndarray], where: str) -> None:
    """Raise DataFormatError unless the arrays follow ARRAY_SPECS with one common T."""
    for key in ("stamps", "labels"):
        if key not in arrays:
            raise DataFormatError(f"{where}: missing array {key!r}")
    length = len(arrays["stamps"])
    for key, value in arrays.items():
        if key == INTRINSICS_KEY:
            if value.shape != (3, 3):
                raise DataFormatError(f"{where}: {key} must be (3, 3), got {value.shape}")
            continue
        if key not in ARRAY_SPECS:
            raise DataFormatError(f"{where}: unknown array {key!r} (known: {', '.join(ARRAY_SPECS)})")
        dtype, ndim = ARRAY_SPECS[key]
        if value.dtype != dtype or value.ndim != ndim:
            raise DataFormatError(f"{where}: {key} must be {dtype} with {ndim} dims, "
                                  f"got {value.dtype} {value.shape}")
        if value.shape[0] != length:
            raise DataFormatError(f"{where}: {key} has {value.shape[0]} frames, stamps has {length}")
    if "rgb" in arrays and arrays["rgb"].shape[-1] != 3:
        raise DataFormatError(f"{where}: rgb must end with 3 channels, got {arrays['rgb'].shape}")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataFormatError(f"{path}: not found (is {path.parent} a clip store?)") from None
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{path}: unreadable JSON ({exc})") from None


def read_mapping(path: Path) -> list[str]:
    """``<id> <label>`` lines -> labels indexed by id; ids must be 0..K-1 (any order)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read class mapping ({exc})") from None
    by_id: dict[int, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not parts[0].lstrip("-").isdigit():
            raise DataFormatError(f"{path}:{number}: expected '<id> <label>', got {line!r}")
        by_id[int(parts[0])] = parts[1].strip()
    if sorted(by_id) != list(range(len(by_id))):
        raise DataFormatError(f"{path}: class ids must be 0..{len(by_id) - 1} without gaps")
    return [by_id[i] for i in range(len(by_id))]


def write_mapping(path: Path, classes: Iterable[str]) -> None:
    Path(path).write_text("".join(f"{i} {name}\n" for i, name in enumerate(classes)))


class ClipStore:
    """Read access to a clip store directory (lazy: metadata now, clips on ``load``)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataFormatError(f"{self.root}: clip store directory not found")
        self.meta: dict = _read_json(self.root / "meta.json")
        self.classes: list[str] = read_mapping(self.root / "mapping.txt")
        for key in ("fps", "modalities"):
            if key not in self.meta:
                raise DataFormatError(f"{self.root / 'meta.json'}: missing key {key!r}")

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    @property
    def modalities(self) -> list[str]:
        return list(self.meta["modalities"])

    @property
    def skeleton_layout(self) -> str | None:
        return self.meta.get("skeleton_layout")

    @property
    def default_split(self) -> str:
        return self.meta.get("default_split", "default")

    def splits(self) -> list[str]:
        folder = self.root / "splits"
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def _split_dir(self, split: str | None) -> Path:
        name = split or self.default_split
        if name == "default" and not (self.root / "splits" / "default").is_dir():
            name = self.default_split
        folder = self.root / "splits" / name
        if not folder.is_dir():
            raise DataFormatError(f"{self.root}: no split {name!r} (available: {', '.join(self.splits()) or 'none'})")
        return folder

    def clip_ids(self, split: str | None = "default", part: str = "train") -> list[str]:
        """Clip ids of one part (train / val / test) of a split; a missing part file is empty.

        ``split`` None or "default" means the store's default split (meta ``default_split``).
        """
        if part not in PARTS:
            raise DataFormatError(f"unknown split part {part!r}; expected one of {', '.join(PARTS)}")
        path = self._split_dir(split) / f"{part}.txt"
        if not path.exists():
            return []
        ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        for clip_id in ids:
            if not self.clip_path(clip_id).exists():
                raise DataFormatError(f"{path}: lists clip {clip_id!r} but {self.clip_path(clip_id)} is missing")
        return ids

    def all_clip_ids(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "clips").glob("*.npz"))

    def clip_path(self, clip_id: str) -> Path:
        return self.root / "clips" / f"{clip_id}.npz"

    def load(self, clip_id: str, modalities: Iterable[str] | None = None) -> Clip:
        """Read one clip. ``modalities``: the subset of arrays to read (default: all)."""
        path = self.clip_path(clip_id)
        wanted = None if modalities is None else set(modalities)
        try:
            with np.load(path, allow_pickle=False) as npz:
                keys = [k for k in npz.files
                        if wanted is None or k in wanted or k in ("stamps", "labels", INTRINSICS_KEY)]
                arrays = {key: npz[key] for key in keys}
        except FileNotFoundError:
            raise DataFormatError(f"{path}: clip file not found") from None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
            raise DataFormatError(f"{path}: corrupt or unreadable clip ({type(exc).__name__}: {exc})") from None
        _check_arrays(arrays, str(path))
        if wanted is not None and (absent := wanted - set(arrays) - {"skeletons"}):
            raise DataFormatError(f"{path}: clip has no {', '.join(sorted(absent))}")
        return Clip(clip_id=clip_id, **arrays)

    def __len__(self) -> int:
        return len(self.all_clip_ids())

    def __repr__(self) -> str:
        return f"ClipStore({str(self.root)!r}, {len(self.classes)} classes, modalities={self.modalities})"


def write_clip(root: str | os.PathLike, clip: Clip, num_classes: int, compress: bool = True) -> Path:
    """Validate and write ``root/clips/<clip_id>.npz`` (atomically: temp file, then rename)."""
    arrays = clip.arrays()
    _check_arrays(arrays, f"clip {clip.clip_id}")
    if clip.labels.size and (clip.labels.min() < 0 or clip.labels.max() >= num_classes):
        raise DataFormatError(f"clip {clip.clip_id}: labels outside 0..{num_classes - 1}")
    path = Path(root) / "clips" / f"{clip.clip_id}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    # The npz layout of np.savez_compressed, but deflate level 1: about 3x faster to write
    # for noisy sensor images at a few percent more bytes; np.load reads it unchanged.
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(tmp, "w", compression=method, compresslevel=1 if compress else None) as archive:
        for key, value in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)
    os.replace(tmp, path)
    return path


@dataclass
class ClipStoreWriter:
    """Writes a clip store: clips one by one, then splits and metadata.

    It starts a fresh store: clip files, split lists and meta.json already in ``root`` are
    removed. ``meta.json`` is written by ``finish`` (last), so a store whose writing was
    interrupted has no meta.json and ClipStore refuses it instead of reading half a dataset.
    """

    root: Path
    classes: list[str]
    meta: dict
    compress: bool = True

    def __post_init__(self):
        self.root = Path(self.root)
        (self.root / "clips").mkdir(parents=True, exist_ok=True)
        stale = [self.root / "meta.json", *(self.root / "clips").glob("*.npz*"),
                 *(self.root / "splits").glob("*/*.txt")]
        for path in stale:
            path.unlink(missing_ok=True)

    def add(self, clip: Clip) -> Path:
        return write_clip(self.root, clip, num_classes=len(self.classes), compress=self.compress)

    def write_split(self, name: str, parts: dict[str, list[str]]) -> None:
        folder = self.root / "splits" / name
        folder.mkdir(parents=True, exist_ok=True)
        for part in PARTS:
            ids = parts.get(part, [])
            (folder / f"{part}.txt").write_text("".join(f"{i}\n" for i in ids))

    def finish(self) -> ClipStore:
        write_mapping(self.root / "mapping.txt", self.classes)
        meta = {"format": FORMAT, **self.meta, "num_clips": len(list((self.root / "clips").glob("*.npz")))}
        (self.root / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return ClipStore(self.root)


def data_fingerprint(store: ClipStore | str | os.PathLike) -> str:
    """sha256 identifying a clip store's content, for checkpoint metadata.

    Hashes meta.json, mapping.txt, every split list (path + content), and for every clip
    file its name and byte size -- not the clip bytes, so fingerprinting a multi-GB store
    takes milliseconds. A clip rewritten with the same size would go unnoticed; the generator
    and importers always rewrite meta.json (clip count, seed, source), which changes too.
    """
    root = store.root if isinstance(store, ClipStore) else Path(store)
    digest = hashlib.sha256()

    def add(label: str, payload: bytes) -> None:
        digest.update(label.encode() + b"\0" + hashlib.sha256(payload).digest())

    for name in ("meta.json", "mapping.txt"):
        path = root / name
        if not path.exists():
            raise DataFormatError(f"{path}: not found (is {root} a clip store?)")
        add(name, path.read_bytes())
    for path in sorted((root / "splits").glob("*/*.txt")):
        add(path.relative_to(root).as_posix(), path.read_bytes())
    for path in sorted((root / "clips").glob("*.npz")):
        add(f"clips/{path.name}", str(path.stat().st_size).encode())
    return digest.hexdigest()
