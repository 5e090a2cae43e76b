"""StreamingPredictor on a small random checkpoint: token cache == recompute, resampling,
stride, resets, missing modalities, modality subsets, parameter checks, release."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import write_tiny_checkpoint
from retf_ros.checkpoint import load_checkpoint
from retf_ros.errors import RetfError
from retf_ros.fusion.inputs import prepare_depth, prepare_rgb, prepare_skeleton
from retf_ros.runtime.frames import FrameSet, InvalidFrame
from retf_ros.runtime.predictor import StreamingPredictor

torch.set_num_threads(1)
J = 25  # kinect_v2_25


def make_frames(n: int, rate_hz: float, seed: int = 0, start: float = 100.0) -> list[FrameSet]:
    rng = np.random.default_rng(seed)
    return [FrameSet(stamp=start + i / rate_hz,
                     rgb=rng.integers(0, 256, (30, 40, 3), dtype=np.uint8),
                     depth=(rng.random((30, 40)) * 4).astype(np.float32),
                     skeleton=rng.normal(0, 0.4, (J, 3)).astype(np.float32),
                     frame_id="camera")
            for i in range(n)]


def batch_forward(model, frames: list[FrameSet], image_size, present=None):
    """The whole model on the same frames at once (no cache), as training/evaluation run it."""
    inputs = {"rgb": prepare_rgb(np.stack([f.rgb for f in frames]), image_size)[None],
              "depth": prepare_depth(np.stack([f.depth for f in frames]), image_size)[None],
              "skeleton": prepare_skeleton(np.stack([f.skeleton for f in frames]), "kinect_v2_25")[None]}
    mask = torch.ones(1, len(frames), dtype=torch.bool)
    with torch.no_grad():
        return model(inputs, mask, present)


@pytest.fixture
def checkpoint(tiny_checkpoint):
    return load_checkpoint(tiny_checkpoint)


def test_streaming_equals_a_batch_forward_of_the_same_window(checkpoint):
    predictor = StreamingPredictor(checkpoint, device="cpu")
    frames = make_frames(40, 15.0)                 # 40 frames through a 16-frame ring: it wraps
    for f in frames:
        predictor.add_frame(f)
    anticipation = predictor.predict()
    streamed = predictor.last_output
    batch = batch_forward(checkpoint.model, frames[-16:], predictor.image_size)
    for name in ("action_logits", "duration_logits", "segmentation_logits", "fused"):
        torch.testing.assert_close(getattr(streamed, name), getattr(batch, name), atol=1e-5, rtol=1e-5)
    assert anticipation.window_frames == 16
    assert anticipation.window_span_s == pytest.approx(15 / 15.0)
    assert anticipation.stamp == frames[-1].stamp


def test_30hz_input_is_resampled_to_the_15fps_model_grid(checkpoint):
    predictor = StreamingPredictor(checkpoint, device="cpu")
    frames = make_frames(64, 30.0)
    taken = [i for i, f in enumerate(frames) if predictor.add_frame(f)]
    assert taken == list(range(0, 64, 2))
    assert predictor.stats.frames_skipped == 32
    anticipation = predictor.predict()
    assert anticipation.window_span_s == pytest.approx(15 / 15.0)   # 16 tokens, 1/15 s apart
    batch = batch_forward(checkpoint.model, frames[::2][-16:], predictor.image_size)
    torch.testing.assert_close(predictor.last_output.action_logits, batch.action_logits, atol=1e-5, rtol=1e-5)


def test_stride_sets_the_inference_cadence(checkpoint):
    predictor = StreamingPredictor(checkpoint, device="cpu", stride=3)
    produced = [i for i, f in enumerate(make_frames(12, 15.0)) if predictor.stream_inference(f) is not None]
    assert produced == [2, 5, 8, 11]
    assert predictor.stats.predictions == 4


def test_time_jumping_backwards_resets_the_window(checkpoint):
    predictor = StreamingPredictor(checkpoint, device="cpu")
    for f in make_frames(20, 15.0):
        predictor.add_frame(f)
    looped = make_frames(3, 15.0, seed=1)           # the bag starts again at t = 100 s
    for f in looped:
        assert predictor.add_frame(f)
    anticipation = predictor.predict()
    assert predictor.stats.restarts == 1
    assert anticipation.window_frames == 3
    assert anticipation.stamp == looped[-1].stamp
    batch = batch_forward(checkpoint.model, looped, predictor.image_size)
    torch.testing.assert_close(predictor.last_output.action_logits, batch.action_logits, atol=1e-5, rtol=1e-5)


def test_missing_modality_is_masked_not_zero_filled_and_reported(checkpoint):
    predictor = StreamingPredictor(checkpoint, device="cpu")
    frames = make_frames(16, 15.0)
    for i, f in enumerate(frames):
        if i >= 11:
            f.depth = None                           # depth sensor down for the last 5 frames
        if i == 15:
            f.states = {"depth": "stale"}
        predictor.add_frame(f)
    anticipation = predictor.predict()
    assert anticipation.modality_states == {"rgb": "ok", "depth": "stale", "skeleton": "ok"}
    assert anticipation.present_frames == {"rgb": 16, "depth": 11, "skeleton": 16}
    assert predictor.last_output.valid["depth"][0].tolist() == [True] * 11 + [False] * 5
    # Whatever the absent frames would have held must not matter: fill them with other images.
    rng = np.random.default_rng(9)
    for f in frames[11:]:
        f.depth = (rng.random((30, 40)) * 4).astype(np.float32)
    present = {"depth": torch.tensor([[True] * 11 + [False] * 5])}
    batch = batch_forward(checkpoint.model, frames, predictor.image_size, present)
    torch.testing.assert_close(predictor.last_output.action_logits, batch.action_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(predictor.last_output.fused, batch.fused, atol=1e-5, rtol=1e-5)


def test_a_frame_without_any_usable_modality_is_not_taken(checkpoint):
    predictor = StreamingPredictor(checkpoint, device="cpu")
    assert predictor.add_frame(FrameSet(stamp=1.0, states={"rgb": "stale"})) is False
    assert predictor.stats.frames_without_modality == 1
    assert not predictor.due()
    with pytest.raises(RetfError, match="no frame has been taken yet"):
        predictor.predict()


def test_skeleton_only_checkpoint_ignores_the_image_modalities(tmp_path):
    weights = write_tiny_checkpoint(tmp_path / "skel", modalities=("skeleton",))
    checkpoint = load_checkpoint(weights)
    predictor = StreamingPredictor(checkpoint, device="cpu")
    frames = make_frames(8, 15.0)
    frames[0].rgb = np.zeros((2, 2), np.float64)       # malformed, but not a modality of this model
    anticipation = None
    for f in frames:
        anticipation = predictor.stream_inference(f) or anticipation
    assert anticipation.modality_states == {"skeleton": "ok"}
    assert set(anticipation.erank.before) == {"skeleton"} and anticipation.erank.mutual_gain == {}
    skeleton = prepare_skeleton(np.stack([f.skeleton for f in frames]), "kinect_v2_25")[None]
    with torch.no_grad():
        batch = checkpoint.model({"skeleton": skeleton}, torch.ones(1, 8, dtype=torch.bool))
    torch.testing.assert_close(predictor.last_output.action_logits, batch.action_logits, atol=1e-5, rtol=1e-5)
    assert predictor.add_frame(FrameSet(stamp=200.0, rgb=frames[1].rgb)) is False


@pytest.mark.parametrize("frame, reason", [
    (FrameSet(stamp=float("nan")), "stamp nan is not a finite number"),
    (FrameSet(stamp=1.0, rgb=np.zeros((4, 4, 3), np.float32)), "rgb must be (H, W, 3) uint8"),
    (FrameSet(stamp=1.0, rgb=np.zeros((0, 4, 3), np.uint8)), "rgb is empty"),
    (FrameSet(stamp=1.0, depth=np.zeros((4, 4, 1), np.float32)), "depth must be (H, W)"),
    (FrameSet(stamp=1.0, skeleton=np.zeros((20, 3), np.float32)), "skeleton has 20 joints, the checkpoint's layout has 25"),
    (FrameSet(stamp=1.0, skeleton=np.zeros((25, 3), np.float32), states={"skeleton": "late"}), "state of skeleton is 'late'"),
    (FrameSet(stamp=1.0, skeleton=np.full((25, 3), np.inf, np.float32)), "skeleton has infinite coordinates"),
])
def test_malformed_frames_raise_invalid_frame_and_leave_the_stream_alone(checkpoint, frame, reason):
    predictor = StreamingPredictor(checkpoint, device="cpu")
    good = make_frames(3, 15.0)
    for f in good:
        predictor.add_frame(f)
    with pytest.raises(InvalidFrame) as info:
        predictor.add_frame(frame)
    assert reason in str(info.value)
    assert len(predictor.ring) == 3 and predictor.stats.frames_taken == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"fps": 30.0}, "fps=30.0 differs from the checkpoint's 15.0"),
    ({"horizon_s": 8.0}, "horizon_s=8.0 differs from the checkpoint's 4.0"),
    ({"window": 32}, "window=32 must be between 2 and the checkpoint's window 16"),
    ({"stride": 0}, "stride=0 must be between 1 and the window"),
    ({"device": "tpu"}, "device 'tpu' is not one of auto, cpu, cuda, cuda:N"),
    ({"precision": "int8"}, "precision 'int8' is not one of fp32, fp16, bf16"),
])
def test_parameters_are_checked_against_the_checkpoint(checkpoint, kwargs, message):
    with pytest.raises(RetfError) as info:
        StreamingPredictor(checkpoint, **{"device": "cpu", **kwargs})
    assert message in str(info.value)


def test_matching_fps_and_horizon_and_a_shorter_window_are_accepted(checkpoint):
    predictor = StreamingPredictor(checkpoint, device="cpu", fps=15.0, horizon_s=4.0, window=8, stride=8)
    for f in make_frames(20, 15.0):
        predictor.add_frame(f)
    assert predictor.predict().window_frames == 8


def test_warm_up_leaves_the_stream_empty_and_release_frees_the_model(checkpoint):
    predictor = StreamingPredictor(checkpoint, device="cpu")
    predictor.warm_up()
    assert len(predictor.ring) == 0 and predictor.stats.frames_taken == 0
    predictor.add_frame(make_frames(1, 15.0)[0])
    predictor.release()
    assert predictor.model is None
    with pytest.raises(RetfError, match="released"):
        predictor.predict()
    with pytest.raises(RetfError, match="released"):
        predictor.add_frame(make_frames(1, 15.0)[0])
    with pytest.raises(RetfError, match="released"):
        predictor.clear_cache()


def test_clear_cache_starts_a_new_stream(checkpoint):
    predictor = StreamingPredictor(checkpoint, device="cpu")
    for f in make_frames(10, 15.0):
        predictor.add_frame(f)
    predictor.clear_cache()
    assert len(predictor.ring) == 0 and not predictor.due()
    assert predictor.add_frame(make_frames(1, 15.0, start=0.0)[0])   # earlier stamp: no restart counted
    assert predictor.stats.restarts == 0


def test_stream_many_batches_the_encoders_and_predicts_exactly_like_frame_by_frame(checkpoint):
    frames = make_frames(70, 30.0)                  # resampled, and a backwards jump half way
    frames += make_frames(30, 30.0, seed=4)
    one_by_one = StreamingPredictor(checkpoint, device="cpu", stride=3)
    expected = []
    for f in frames:
        if one_by_one.stream_inference(f) is not None:
            expected.append((one_by_one.last_output.action_logits, one_by_one._newest.stamp))
    batched = StreamingPredictor(checkpoint, device="cpu", stride=3)
    got = []
    for anticipation in batched.stream_many(frames, batch=16):
        got.append((batched.last_output.action_logits, anticipation.stamp))
    assert [stamp for _, stamp in got] == [stamp for _, stamp in expected]
    assert len(got) == 16                           # 35 + 15 frames taken -> 11 + 5 windows
    for (a, _), (b, _) in zip(got, expected):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert replace(batched.stats, last_encode_ms=0.0) == replace(one_by_one.stats, last_encode_ms=0.0)
    assert batched.stats.restarts == 1 and batched.stats.frames_taken == 50


def test_nan_joints_are_missing_joints_not_an_error(checkpoint):
    predictor = StreamingPredictor(checkpoint, device="cpu")
    frames = make_frames(4, 15.0)
    frames[-1].skeleton[3:10] = np.nan
    for f in frames:
        assert predictor.add_frame(f)
    assert np.isfinite(predictor.predict().current_confidence)


def test_non_finite_model_outputs_are_refused_not_published(checkpoint):
    predictor = StreamingPredictor(checkpoint, device="cpu")
    with torch.no_grad():
        checkpoint.model.class_head.bias.fill_(float("inf"))
    for f in make_frames(3, 15.0):
        predictor.add_frame(f)
    with pytest.raises(RetfError, match=r"non-finite outputs on this window \(precision fp32\)"):
        predictor.predict()
