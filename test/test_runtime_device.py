"""Device and precision selection: no silent fallback, fp16 refused on CPU, bf16 runs on CPU;
GPU checks run only where CUDA exists."""
from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from retf_ros.checkpoint import load_checkpoint
from retf_ros.errors import RetfError
from retf_ros.device import select_device, select_precision
from retf_ros.runtime.frames import FrameSet
from retf_ros.runtime.predictor import StreamingPredictor

torch.set_num_threads(1)
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def frames(n: int, seed: int = 0) -> list[FrameSet]:
    rng = np.random.default_rng(seed)
    return [FrameSet(stamp=i / 15.0, rgb=rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
                     depth=(rng.random((24, 32)) * 3).astype(np.float32),
                     skeleton=rng.normal(0, 0.4, (25, 3)).astype(np.float32)) for i in range(n)]


def run_stream(predictor: StreamingPredictor, n: int = 16):
    for f in frames(n):
        predictor.add_frame(f)
    return predictor.predict()


def test_cpu_and_auto_without_cuda():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(" CPU ") == torch.device("cpu")
    expected = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    assert select_device("auto") == expected


@no_cuda
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_requested_without_cuda_is_an_error_not_a_fallback(spec):
    with pytest.raises(RetfError, match=f"device '{spec}' requested but CUDA is not available"):
        select_device(spec)


@no_cuda
def test_predictor_refuses_cuda_without_cuda(tiny_checkpoint):
    with pytest.raises(RetfError, match="CUDA is not available"):
        StreamingPredictor(load_checkpoint(tiny_checkpoint), device="cuda")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:-1", ""])
def test_unknown_device_strings_are_refused(spec):
    with pytest.raises(RetfError, match="is not one of auto, cpu, cuda, cuda:N"):
        select_device(spec)


def test_fp16_on_cpu_is_refused_with_the_alternatives():
    with pytest.raises(RetfError, match="precision 'fp16' needs a CUDA device.*use 'bf16' or 'fp32'"):
        select_precision("fp16", torch.device("cpu"))


def test_precision_names_map_to_dtypes_on_cpu():
    assert select_precision("fp32", torch.device("cpu")) is torch.float32
    assert select_precision("BF16", torch.device("cpu")) is torch.bfloat16


def test_bf16_on_cpu_runs_and_stays_close_to_fp32(tiny_checkpoint):
    reference = run_stream(StreamingPredictor(load_checkpoint(tiny_checkpoint), device="cpu"))
    bf16 = StreamingPredictor(load_checkpoint(tiny_checkpoint), device="cpu", precision="bf16")
    anticipation = run_stream(bf16)
    assert bf16.dtype is torch.bfloat16
    assert anticipation.window_frames == 16
    assert np.isfinite(anticipation.current_confidence)
    assert anticipation.current_confidence == pytest.approx(reference.current_confidence, abs=0.05)


@needs_cuda
def test_cuda_matches_cpu_in_fp32_and_runs_fp16_bf16(tiny_checkpoint):
    cpu = StreamingPredictor(load_checkpoint(tiny_checkpoint), device="cpu")
    run_stream(cpu)
    gpu = StreamingPredictor(load_checkpoint(tiny_checkpoint), device="cuda")
    assert gpu.device.type == "cuda" and gpu.device_name.startswith("cuda:0 (")
    run_stream(gpu)
    torch.testing.assert_close(gpu.last_output.action_logits.cpu(), cpu.last_output.action_logits,
                               atol=1e-4, rtol=1e-4)
    for precision in ("fp16", "bf16"):
        predictor = StreamingPredictor(load_checkpoint(tiny_checkpoint), device="cuda:0", precision=precision)
        predictor.warm_up()
        anticipation = run_stream(predictor)
        assert np.isfinite(anticipation.current_confidence) and anticipation.erank.fused is not None


@needs_cuda
def test_release_returns_gpu_memory_even_while_the_checkpoint_is_held(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint)
    parameter_bytes = sum(p.numel() * p.element_size() for p in checkpoint.model.parameters())
    gc.collect()
    warm = torch.ones(8, 8, device="cuda")
    (warm @ warm).sum().item()   # the cuBLAS workspace stays allocated for the process: count it in
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    predictor = StreamingPredictor(checkpoint, device="cuda")
    run_stream(predictor)
    assert torch.cuda.memory_allocated() - baseline >= parameter_bytes
    predictor.release()
    assert next(checkpoint.model.parameters()).device.type == "cpu"
    assert torch.cuda.memory_allocated() - baseline < parameter_bytes


def test_unavailable_device_says_why_before_anything_is_built():
    from retf_ros.device import unavailable_device

    assert unavailable_device("cpu") is None and unavailable_device("auto") is None
    beyond = f"cuda:{torch.cuda.device_count() + 7}"
    reason = unavailable_device(beyond)
    assert reason is not None and beyond in reason
