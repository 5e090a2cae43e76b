"""Prepared-frame cache and the training/validation samples drawn from it (tiny clip store)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from retf_ros.training import windows
from retf_ros.training.dataset import TaskSpec, WindowDataset, protocol_sample
from retf_ros.evaluation.protocol import predicted_frames
from retf_ros.training.prepared import DEPTH_STD_FLOOR, PrepareSpec, PreparedCache, depth_statistics

SPEC = PrepareSpec(modalities=("rgb", "depth", "skeleton"), fps=5.0, image_size=(8, 10), depth_size=(8, 10),
                   skeleton_layout="kinect_v2_25", source_layout="kinect_v2_25")
STREAM = TaskSpec(task="stream", window=6, horizon=5, num_queries=4, none_class=4)


@pytest.fixture
def cache(tiny_clip_store, tmp_path):
    return PreparedCache(tiny_clip_store, tmp_path / "cache", SPEC)


def test_prepared_clip_is_resampled_preprocessed_and_marks_skeleton_dropouts(cache, tiny_clip_store):
    clip = cache.open("clip00")
    source = tiny_clip_store.load("clip00")
    # 40 frames at 10 fps -> ticks every 0.2 s -> every second source frame
    np.testing.assert_array_equal(clip.labels, source.labels[::2])
    assert clip.inputs["rgb"].shape == (20, 3, 8, 10) and clip.inputs["rgb"].dtype == np.float16
    assert clip.inputs["depth"].shape == (20, 1, 8, 10)
    assert clip.inputs["skeleton"].shape == (20, 25, 3)
    np.testing.assert_allclose(clip.inputs["depth"][0], 1.5 / 5.0, atol=1e-3)  # 1500 mm / DEPTH_SCALE_M
    # source frames 3, 4, 5 have no skeleton: model frame 2 (= source 4) is absent
    expected = np.ones(20, bool)
    expected[2] = False
    np.testing.assert_array_equal(clip.present["skeleton"], expected)
    assert clip.present["rgb"].all()


def test_cache_entry_is_reused_and_keyed_by_preprocessing(cache, tiny_clip_store, tmp_path):
    entry = cache.ensure("clip01")
    stamp = (entry / "labels.npy").stat().st_mtime_ns
    assert cache.ensure("clip01") == entry
    assert (entry / "labels.npy").stat().st_mtime_ns == stamp
    other = PreparedCache(tiny_clip_store, tmp_path / "cache",
                          PrepareSpec(**{**SPEC.__dict__, "fps": 10.0}))
    assert other.ensure("clip01") != entry
    assert other.open("clip01").num_frames == 40


def test_stream_training_samples_follow_the_clip_and_are_reproducible(cache):
    data = WindowDataset(cache, ["clip00", "clip01"], STREAM, samples_per_clip=5, train=True, seed=3)
    assert len(data) == 10
    sample = data[7]
    assert sample["inputs"]["rgb"].shape == (6, 3, 8, 10)
    assert sample["mask"].dtype == torch.bool and sample["future_classes"].shape == (4,)
    again = data[7]
    for key in ("mask", "frame_labels", "future_classes", "future_durations"):
        assert torch.equal(sample[key], again[key])
    # The observed labels and the future targets agree with the prepared clip's labels.
    clip = cache.open("clip01")
    observed = sample["frame_labels"][sample["mask"]].numpy()
    n = len(observed)
    starts = [s for s in range(clip.num_frames - n + 1) if np.array_equal(clip.labels[s:s + n], observed)]
    assert starts, "observed labels are not a contiguous piece of the clip"
    ends = {s + n - 1 for s in starts}
    assert any(torch.equal(sample["future_classes"], torch.from_numpy(
        windows.future_targets(clip.labels[e + 1:e + 6], 4, 4).classes)) for e in ends)
    # A different epoch draws different end points somewhere in the set.
    data.set_epoch(1)
    assert any(not torch.equal(data[i]["frame_labels"], WindowDataset(
        cache, ["clip00", "clip01"], STREAM, 5, train=True, seed=3)[i]["frame_labels"]) for i in range(10))


def test_padding_and_absent_frames_are_zero_and_not_present(cache):
    clip = cache.open("clip00")
    from retf_ros.training.dataset import stream_sample

    sample = stream_sample(clip, end=2, spec=STREAM)  # frames 0, 1, 2 then 3 padding slots
    np.testing.assert_array_equal(sample["mask"].numpy(), [True, True, True, False, False, False])
    np.testing.assert_array_equal(sample["present"]["skeleton"].numpy(), [True, True, False, False, False, False])
    assert float(sample["inputs"]["skeleton"][2].abs().sum()) == 0.0
    assert float(sample["inputs"]["rgb"][3:].abs().sum()) == 0.0
    np.testing.assert_array_equal(sample["frame_labels"][3:].numpy(), [-1, -1, -1])


def test_validation_samples_are_fixed_and_span_the_clip(cache):
    data = WindowDataset(cache, ["clip00"], STREAM, samples_per_clip=3, train=False)
    lengths = [int(data[i]["mask"].sum()) for i in range(3)]
    data.set_epoch(5)
    assert [int(data[i]["mask"].sum()) for i in range(3)] == lengths
    # ends at round(0 + 14 * (k + 0.5) / 3) = 2, 7, 12 -> 3, 6, 6 observed frames
    assert lengths == [3, 6, 6]


def test_protocol_sample_observes_the_prefix_and_predicts_half_the_clip(cache):
    clip = cache.open("clip02")
    spec = TaskSpec(task="protocol", window=4, horizon=0, num_queries=8, none_class=4)
    sample = protocol_sample(clip, 0.3, spec)
    # L = 20: observe 6 frames subsampled to 4 (0, 2, 3, 5), predict frames 6..15
    np.testing.assert_array_equal(sample["frame_labels"].numpy(), clip.labels[[0, 2, 3, 5]])
    expected = windows.future_targets(clip.labels[6:16], 8, 4)
    np.testing.assert_array_equal(sample["future_classes"].numpy(), expected.classes)
    np.testing.assert_allclose(sample["future_durations"].numpy(), expected.durations)


def test_protocol_validation_uses_every_alpha_once(cache):
    spec = TaskSpec(task="protocol", window=8, horizon=0, num_queries=4, none_class=4, alphas=(0.2, 0.3, 0.5))
    data = WindowDataset(cache, ["clip00", "clip01"], spec, samples_per_clip=99, train=False)
    assert len(data) == 6
    assert [int(data[i]["mask"].sum()) for i in range(3)] == [4, 6, 8]


def test_stream_prediction_beyond_the_horizon_holds_the_last_action():
    spec = TaskSpec(task="stream", window=4, horizon=4, num_queries=4, none_class=9)
    frames = predicted_frames([(1, 0.5, 0.9), (2, 0.5, 0.8)], spec, 7)
    np.testing.assert_array_equal(frames, [1, 1, 2, 2, 2, 2, 2])
    np.testing.assert_array_equal(predicted_frames([], spec, 6), [9] * 6)
    np.testing.assert_array_equal(predicted_frames([(3, 1.0, 1.0)], spec, 2), [3, 3])
    protocol = TaskSpec(task="protocol", window=4, horizon=0, num_queries=4, none_class=9)
    np.testing.assert_array_equal(predicted_frames([(1, 0.25, 1.0), (0, 0.75, 1.0)], protocol, 8),
                                  [1, 1, 0, 0, 0, 0, 0, 0])


def test_modality_subsets_share_cache_entries_and_missing_modalities_are_added(tiny_clip_store, tmp_path):
    skeleton_only = PreparedCache(tiny_clip_store, tmp_path / "c", PrepareSpec(**{**SPEC.__dict__,
                                                                                 "modalities": ("skeleton",)}))
    entry = skeleton_only.ensure("clip03")
    assert sorted(p.name for p in entry.iterdir()) == ["labels.npy", "skeleton.npy", "skeleton.present.npy"]
    full = PreparedCache(tiny_clip_store, tmp_path / "c", SPEC)
    assert not full.is_ready("clip03")
    skeleton_stamp = (entry / "skeleton.npy").stat().st_mtime_ns
    assert full.ensure("clip03") == entry
    assert full.is_ready("clip03") and skeleton_only.is_ready("clip03")
    assert (entry / "skeleton.npy").stat().st_mtime_ns == skeleton_stamp  # not prepared twice
    assert full.open("clip03").inputs["rgb"].shape == (20, 3, 8, 10)


def _depth_store(root):
    """Two depth-only clips of random depth with holes; pixel (0, 0) never valid, (1, 1) constant."""
    from retf_ros.data.clipstore import Clip, ClipStoreWriter

    rng = np.random.default_rng(5)
    writer = ClipStoreWriter(root, ["a", "b"], {"fps": 5.0, "modalities": ["depth"], "source": "test"})
    for i, frames in enumerate((13, 20)):
        depth = rng.integers(500, 4000, (frames, 8, 10)).astype(np.uint16)
        depth[rng.random(depth.shape) < 0.2] = 0
        depth[:, 0, 0] = 0
        depth[:, 1, 1] = 2000
        writer.add(Clip(f"c{i}", stamps=np.arange(frames) / 5.0, labels=np.zeros(frames, np.int64), depth=depth))
    writer.write_split("default", {"train": ["c0", "c1"], "val": [], "test": []})
    return writer.finish()


@pytest.mark.parametrize("max_frames, stride", [(1000, 1), (12, 3)])
def test_depth_statistics_are_per_pixel_moments_of_the_valid_readings(tmp_path, max_frames, stride):
    """The PixelStandardiser's statistics: over every ``stride``-th prepared frame of each clip
    (the fewest frames reaching ``max_frames``), holes excluded; never-valid pixels 0 / 1, a
    constant pixel's std floored."""
    spec = PrepareSpec(modalities=("depth",), fps=5.0, image_size=(8, 10), depth_size=(8, 10),
                       skeleton_layout="kinect_v2_25", source_layout="kinect_v2_25")
    cache = PreparedCache(_depth_store(tmp_path / "store"), tmp_path / "cache", spec)
    mean, std = depth_statistics(cache, ["c0", "c1"], max_frames=max_frames)
    frames = np.concatenate([np.asarray(cache.open(c).inputs["depth"][::stride], np.float64)[:, 0]
                             for c in ("c0", "c1")])
    assert len(frames) == sum(len(range(0, n, stride)) for n in (13, 20))  # 33, or 5 + 7 at stride 3
    readings = np.ma.masked_equal(frames, 0.0)
    assert mean.shape == std.shape == (8, 10) and mean.dtype == np.float32
    np.testing.assert_allclose(mean[2:], readings.mean(0)[2:], rtol=1e-5)
    np.testing.assert_allclose(std[2:], np.maximum(readings.std(0)[2:], DEPTH_STD_FLOOR), rtol=1e-4)
    assert (mean[0, 0], std[0, 0]) == (0.0, 1.0)
    assert mean[1, 1] == pytest.approx(2000 / 1000 / 5, abs=1e-3) and std[1, 1] == pytest.approx(DEPTH_STD_FLOOR)
