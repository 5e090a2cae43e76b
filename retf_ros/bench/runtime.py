"""Streaming-runtime figures: the cost of one frame (preprocess + encoders into the token ring)
and of one window (temporal model + decoding + effective-rank health) of the StreamingPredictor,
on the CPU (fp32, bf16) and, with --gpu, on CUDA in fp32 / fp16 / bf16.

Uses the shipped demo checkpoint when present (or ``args.checkpoint``); otherwise a randomly
initialised model with the default architecture (R3DConfig defaults, window 32 at 15 fps),
which costs the same as trained weights. Input frames are VGA (480 x 640), so the resize to the
model's image size is part of the per-frame cost, as in the node.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from retf_ros.bench import machine_description
from retf_ros.checkpoint import load_checkpoint, save_checkpoint
from retf_ros.fusion import R3DConfig, R3DModel
from retf_ros.runtime.frames import FrameSet
from retf_ros.runtime.predictor import StreamingPredictor

DEMO_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "demo.safetensors"
FRAME_SHAPE = (480, 640)


def _checkpoint(args, workdir: Path):
    """(LoadedCheckpoint, description) for the benchmark."""
    path = getattr(args, "checkpoint", None) or (DEMO_CHECKPOINT if DEMO_CHECKPOINT.exists() else None)
    if path is not None:
        loaded = load_checkpoint(path)
        return loaded, f"checkpoint {loaded.path.name}"
    torch.manual_seed(0)
    model = R3DModel(R3DConfig(num_classes=10))
    weights = save_checkpoint(workdir / "random", model, {
        "classes": [f"class_{i}" for i in range(10)], "fps": 15.0, "window": 32, "horizon_s": 4.0,
        "image_size": list(model.config.image_size), "skeleton_layout": model.config.skeleton_layout})
    return load_checkpoint(weights), "random weights, default R3DConfig (no demo checkpoint found)"


def _frames(count: int, num_joints: int | None, fps: float, seed: int = 0):
    """VGA frames stamped on the model's time grid, so every one is encoded (none skipped)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (4, *FRAME_SHAPE, 3), dtype=np.uint8)
    depth = (rng.random((4, *FRAME_SHAPE)) * 4 + 0.5).astype(np.float32)
    joints = rng.normal(0, 0.4, (4, num_joints or 1, 3)).astype(np.float32)
    return [FrameSet(stamp=i / fps, rgb=rgb[i % 4], depth=depth[i % 4],
                     skeleton=joints[i % 4] if num_joints else None) for i in range(count)]


def measure(checkpoint, device: str, precision: str, windows: int = 30) -> dict:
    """Median per-frame (add_frame) and per-window (predict) wall times in ms."""
    predictor = StreamingPredictor(checkpoint, device=device, precision=precision)
    predictor.warm_up()
    frames = _frames(predictor.window + windows, predictor.num_joints, predictor.fps)
    frame_ms, window_ms = [], []
    for i, frame in enumerate(frames):
        start = time.perf_counter()
        predictor.add_frame(frame)          # synchronises the device before returning
        frame_ms.append((time.perf_counter() - start) * 1e3)
        if i >= predictor.window:           # full window from here on
            start = time.perf_counter()
            predictor.predict()             # returns host values: the device work is done
            window_ms.append((time.perf_counter() - start) * 1e3)
    prepare_ms = []
    for frame in frames[:windows]:
        start = time.perf_counter()
        for modality in predictor.modalities:
            predictor.prepare_inputs(modality, [frame.array(modality)])
        prepare_ms.append((time.perf_counter() - start) * 1e3)
    result = {"device": predictor.device_name, "window": predictor.window,
              "frame_ms": statistics.median(frame_ms[predictor.window:]),
              "prepare_ms": statistics.median(prepare_ms),
              "window_ms": statistics.median(window_ms)}
    predictor.release()
    return result


def run(args) -> None:
    with tempfile.TemporaryDirectory(prefix="retf_bench_") as tmp:
        checkpoint, description = _checkpoint(args, Path(tmp))
        modalities = "+".join(checkpoint.model.config.modalities)
        runs = [("cuda", p) for p in ("fp32", "fp16", "bf16")] if getattr(args, "gpu", False) \
            else [("cpu", "fp32"), ("cpu", "bf16")]
        for device, precision in runs:
            figures = measure(checkpoint, device, precision)
            load = ", load average {:.1f}".format(os.getloadavg()[0]) if hasattr(os, "getloadavg") else ""
            print(f"[runtime] machine: {machine_description(torch.device(device))}{load}")
            per_frame_total = figures["frame_ms"] + figures["window_ms"]
            print(f"[runtime] StreamingPredictor on {figures['device']} {precision}, {description}, "
                  f"{modalities}, window {figures['window']}, VGA input: encode {figures['frame_ms']:.2f} ms/frame "
                  f"(of which preprocessing {figures['prepare_ms']:.2f} ms), inference {figures['window_ms']:.2f} "
                  f"ms/window -> with stride 1 keeps up with {1000.0 / per_frame_total:.0f} model frames/s")
