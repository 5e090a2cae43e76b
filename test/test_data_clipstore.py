"""The clip store format: round trip, lazy per-clip loading, clear errors on bad stores."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from retf_ros.data.clipstore import Clip, ClipStore, ClipStoreWriter, data_fingerprint, read_mapping
from retf_ros.errors import DataFormatError

CLASSES = ["idle", "reach", "grasp"]


def _clip(clip_id: str, t: int = 5, seed: int = 0) -> Clip:
    rng = np.random.default_rng(seed)
    skeleton = rng.normal(size=(t, 25, 3)).astype(np.float32)
    skeleton[1] = np.nan  # a whole-frame dropout survives the round trip
    return Clip(clip_id=clip_id, stamps=np.arange(t) / 15.0, labels=rng.integers(0, 3, t).astype(np.int64),
                rgb=rng.integers(0, 256, (t, 6, 8, 3), dtype=np.uint8),
                depth=rng.integers(0, 5000, (t, 6, 8)).astype(np.uint16), skeleton=skeleton,
                skeletons=np.stack([skeleton, np.full_like(skeleton, np.nan)], axis=1),
                intrinsics=np.eye(3))


def _store(root, clips=("a", "b", "c")) -> ClipStore:
    writer = ClipStoreWriter(root, CLASSES, {"fps": 15.0, "modalities": ["rgb", "depth", "skeleton"],
                                             "skeleton_layout": "kinect_v2_25", "source": "test",
                                             "default_split": "main"})
    for i, name in enumerate(clips):
        writer.add(_clip(name, seed=i))
    writer.write_split("main", {"train": ["a", "b"], "val": [], "test": ["c"]})
    writer.write_split("other", {"train": ["c"], "test": ["a"]})
    return writer.finish()


def test_round_trip_keeps_every_array_and_the_metadata(tmp_path):
    store = _store(tmp_path / "s")
    assert store.classes == CLASSES and store.fps == 15.0
    assert store.modalities == ["rgb", "depth", "skeleton"] and store.skeleton_layout == "kinect_v2_25"
    assert store.meta["source"] == "test" and store.meta["num_clips"] == 3
    assert store.splits() == ["main", "other"] and store.default_split == "main"
    assert store.clip_ids(part="train") == ["a", "b"]           # "default" -> meta default_split
    assert store.clip_ids("main", "val") == [] and store.clip_ids("other", "test") == ["a"]
    assert store.all_clip_ids() == ["a", "b", "c"] and len(store) == 3
    loaded = store.load("b")
    expected = _clip("b", seed=1)
    for key, value in expected.arrays().items():
        got = getattr(loaded, key)
        assert got.dtype == value.dtype, key
        np.testing.assert_array_equal(got, value, err_msg=key)
    assert loaded.modalities == ["rgb", "depth", "skeleton"] and loaded.num_frames == 5


def test_load_reads_only_the_requested_modalities(tmp_path):
    store = _store(tmp_path / "s")
    clip = store.load("a", ["skeleton"])
    assert clip.skeleton is not None and clip.rgb is None and clip.depth is None
    assert clip.labels.shape == (5,) and clip.stamps.shape == (5,)
    with pytest.raises(DataFormatError, match="has no rgb_features"):
        store.load("a", ["rgb_features"])


def test_corrupt_clip_file_is_a_data_format_error_naming_it(tmp_path):
    store = _store(tmp_path / "s")
    path = store.clip_path("a")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataFormatError, match=r"a\.npz: corrupt or unreadable"):
        store.load("a")
    with pytest.raises(DataFormatError, match=r"zz\.npz: clip file not found"):
        store.load("zz")


def test_pickled_object_arrays_are_refused(tmp_path):
    store = _store(tmp_path / "s")
    np.savez(store.clip_path("a"), stamps=np.arange(3.0), labels=np.zeros(3, dtype=np.int64),
             skeleton=np.array([{"x": 1}, None, 3], dtype=object))
    with pytest.raises(DataFormatError, match=r"a\.npz"):
        store.load("a")


def test_wrong_dtype_or_length_is_reported_with_the_array_name(tmp_path):
    store = _store(tmp_path / "s")
    np.savez(store.clip_path("a"), stamps=np.arange(3.0), labels=np.zeros(3, dtype=np.int64),
             depth=np.zeros((3, 4, 4), dtype=np.float32))
    with pytest.raises(DataFormatError, match="depth must be uint16"):
        store.load("a")
    np.savez(store.clip_path("b"), stamps=np.arange(3.0), labels=np.zeros(4, dtype=np.int64))
    with pytest.raises(DataFormatError, match="labels has 4 frames, stamps has 3"):
        store.load("b")


def test_missing_meta_mapping_gaps_and_dangling_split_entries(tmp_path):
    root = tmp_path / "s"
    store = _store(root)
    (root / "splits" / "main" / "test.txt").write_text("c\nghost\n")
    with pytest.raises(DataFormatError, match="lists clip 'ghost'"):
        store.clip_ids("main", "test")
    with pytest.raises(DataFormatError, match="no split 'nope'"):
        store.clip_ids("nope")
    (root / "mapping.txt").write_text("0 idle\n2 grasp\n")
    with pytest.raises(DataFormatError, match="mapping.txt: class ids must be 0..1"):
        ClipStore(root)
    (root / "mapping.txt").write_text("0 idle\nreach\n")
    with pytest.raises(DataFormatError, match=r"mapping.txt:2: expected '<id> <label>'"):
        ClipStore(root)
    (root / "meta.json").unlink()
    with pytest.raises(DataFormatError, match="meta.json: not found"):
        ClipStore(root)
    with pytest.raises(DataFormatError, match="clip store directory not found"):
        ClipStore(tmp_path / "absent")


def test_mapping_accepts_labels_with_spaces_in_any_line_order(tmp_path):
    path = tmp_path / "mapping.txt"
    path.write_text("1 pour milk\n0 SIL\n")
    assert read_mapping(path) == ["SIL", "pour milk"]


def test_writer_validates_labels_and_starts_a_fresh_store(tmp_path):
    root = tmp_path / "s"
    _store(root)
    writer = ClipStoreWriter(root, CLASSES, {"fps": 15.0, "modalities": ["skeleton"]})
    assert not (root / "meta.json").exists() and list((root / "clips").iterdir()) == []
    bad = _clip("x")
    bad.labels[0] = 3
    with pytest.raises(DataFormatError, match="labels outside 0..2"):
        writer.add(bad)
    writer.add(_clip("y"))
    store = writer.finish()
    assert store.all_clip_ids() == ["y"] and store.splits() == ["main", "other"]
    with zipfile.ZipFile(store.clip_path("y")) as archive:  # plain npz members, nothing pickled
        assert sorted(archive.namelist()) == sorted(f"{k}.npy" for k in _clip("y").arrays())


def test_fingerprint_is_stable_and_tracks_content(tmp_path):
    root = tmp_path / "s"
    store = _store(root)
    first = data_fingerprint(store)
    assert len(first) == 64 and data_fingerprint(root) == first
    (root / "splits" / "main" / "val.txt").write_text("b\n")
    second = data_fingerprint(root)
    assert second != first
    np.savez(store.clip_path("c"), stamps=np.arange(2.0), labels=np.zeros(2, dtype=np.int64))
    assert data_fingerprint(root) != second
    meta = json.loads((root / "meta.json").read_text())
    assert meta["format"] == "retf_ros/clipstore/v1"
