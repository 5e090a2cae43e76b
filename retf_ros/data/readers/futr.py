"""FUTR / R3D feature folders -> clip store (docs/data.md).

SRC holds ``features/<video>.npy`` (per-frame features; FUTR stores (D, T), some tools (T, D)),
optional ``features_depth/<video>.npy``, ``groundTruth/<video>.txt`` (one label per line and
frame), ``mapping.txt`` (``<id> <label>``) and split lists: ``splits/{train,val,test}.<name>.bundle``
(one ``<video>.txt`` per line, FUTR's convention) or ``splits/<name>/{train,val,test}.txt``.
Orientation: the axis whose length equals the ground-truth length is time; when both axes do
(D == T) FUTR's (D, T) is assumed. Features are stored as ``rgb_features`` / ``depth_features``
(T, D) float32.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from retf_ros.data.clipstore import Clip, ClipStoreWriter, read_mapping
from retf_ros.data.readers.common import ImportResult, LineError, progress, require_some
from retf_ros.errors import DataFormatError

_BUNDLE = re.compile(r"^(train|val|test)\.(.+)\.bundle$")
VAL_EVERY = 10  # a split without a val list gets every 10th training video (sorted) as val


def load_features(path: Path, frames: int) -> np.ndarray:
    """.npy (D, T) or (T, D) -> (T, D) float32, oriented by the ground-truth length."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{path}: unreadable .npy ({exc})") from None
    if array.ndim != 2:
        raise DataFormatError(f"{path}: features must be 2-D (D, T) or (T, D), got shape {array.shape}")
    if array.shape[1] == frames:      # FUTR's (D, T), also when D == T
        array = array.T
    elif array.shape[0] != frames:
        raise DataFormatError(f"{path}: shape {array.shape} has no axis of length {frames} "
                              f"(the ground-truth frame count)")
    return np.ascontiguousarray(array, dtype=np.float32)


def read_ground_truth(path: Path, class_id: dict[str, int]) -> np.ndarray:
    labels = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        label = raw.strip()
        if not label:
            continue
        if label not in class_id:
            raise LineError(path, number, f"label {label!r} is not in mapping.txt")
        labels.append(class_id[label])
    if not labels:
        raise DataFormatError(f"{path}: no labels")
    return np.asarray(labels, dtype=np.int64)


def read_splits(src: Path) -> dict[str, dict[str, list[str]]]:
    """{split name: {part: [video, ...]}} from FUTR bundles or our own split folders."""
    splits: dict[str, dict[str, list[str]]] = {}
    folder = src / "splits"
    if not folder.is_dir():
        return splits
    for path in sorted(folder.glob("*.bundle")):
        m = _BUNDLE.match(path.name)
        if m:
            videos = [Path(line.strip()).stem for line in path.read_text().splitlines() if line.strip()]
            splits.setdefault(m.group(2), {})[m.group(1)] = videos
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        for part in ("train", "val", "test"):
            path = sub / f"{part}.txt"
            if path.exists():
                videos = [Path(line.strip()).stem for line in path.read_text().splitlines() if line.strip()]
                splits.setdefault(sub.name, {})[part] = videos
    return splits


def import_futr(src: Path, out: Path, fps: float | None = None) -> ImportResult:
    fps = 15.0 if fps is None else float(fps)
    src, out = Path(src), Path(out)
    for needed in ("mapping.txt", "groundTruth", "features"):
        if not (src / needed).exists():
            raise DataFormatError(f"{src}: missing {needed} (expected features/, groundTruth/, mapping.txt)")
    classes = read_mapping(src / "mapping.txt")
    class_id = {name: i for i, name in enumerate(classes)}
    depth_folder = src / "features_depth"
    with_depth = depth_folder.is_dir()
    writer = ClipStoreWriter(out, classes, {})
    result = ImportResult()
    imported: list[str] = []
    for gt in progress(sorted((src / "groundTruth").glob("*.txt")), "import futr"):
        video = gt.stem
        try:
            labels = read_ground_truth(gt, class_id)
            feature_path = src / "features" / f"{video}.npy"
            if not feature_path.exists():
                raise DataFormatError(f"{feature_path}: missing (groundTruth/{gt.name} has no features)")
            clip = Clip(clip_id=video, stamps=np.arange(len(labels)) / fps, labels=labels,
                        rgb_features=load_features(feature_path, len(labels)))
            if with_depth:
                depth_path = depth_folder / f"{video}.npy"
                if not depth_path.exists():
                    raise DataFormatError(f"{depth_path}: missing (features_depth/ exists, so every video needs one)")
                clip.depth_features = load_features(depth_path, len(labels))
        except DataFormatError as exc:
            result.problems.append(str(exc))
            continue
        writer.add(clip)
        imported.append(video)
        result.clips += 1
        result.frames += clip.num_frames
    require_some(result, src, "FUTR videos")

    known = set(imported)
    splits = read_splits(src)
    if not splits:
        splits = {"all": {"train": sorted(imported)}}
    for name, parts in splits.items():
        parts = {part: [v for v in videos if v in known] for part, videos in parts.items()}
        if not parts.get("val") and len(parts.get("train", [])) >= VAL_EVERY:
            train = sorted(parts["train"])
            parts["val"] = train[VAL_EVERY - 1::VAL_EVERY]
            parts["train"] = [v for v in train if v not in set(parts["val"])]
        writer.write_split(name, parts)
    writer.meta = {
        "source": "futr",
        "fps": fps,
        "modalities": ["rgb_features", "depth_features"] if with_depth else ["rgb_features"],
        "skeleton_layout": None,
        "default_split": sorted(splits)[0],
        "task": "anticipation",
        "notes": ("features stored (T, D) float32 as rgb_features / depth_features (FUTR's (D, T) files are "
                  "transposed: time is the axis matching the groundTruth length, (D, T) assumed when D == T); "
                  f"a split without a val list gets every {VAL_EVERY}th training video (sorted) as val; "
                  "without split lists, split 'all' holds every video in train"),
    }
    writer.finish()
    result.splits = sorted(splits)
    return result
