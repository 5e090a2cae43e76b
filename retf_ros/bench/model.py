"""Model figures at the authors' configuration (issue 20), one torch thread.

The configuration of the side-by-side comparison with the authors' FUTR-style R3D code:
precomputed 2048-d RGB frame features + a 160x120 depth map flattened, C = 128, 2 encoder /
1 decoder layers, 8 queries, 8 heads, RTF rho 0.3, batch 1, every frame valid. Printed per
window length T: the whole forward (encoders + fusion + temporal model + heads), the fuser
alone (RTF exchange + cross-modal block) and the temporal part (forward_tokens). Then the
per-frame path: one VGA RGB frame and one VGA depth frame prepared for the model
(retf_ros.fusion.inputs) at the image sizes the shipped and default models use.
Median of 25 calls after 5 warm-up calls, wall time and (CPU) the calling thread's CPU time,
which a CPU shared with other work inflates less; the machine is printed with the figures.
With --gpu the forward figures are taken on CUDA in fp32 and under fp16 / bf16 autocast (the
precisions of the streaming runtime; weights stay fp32).
"""
from __future__ import annotations

import os

import numpy as np
import torch

from retf_ros.bench import machine_description, median_wall_and_cpu_ms
from retf_ros.device import PRECISIONS, autocast
from retf_ros.fusion import R3DConfig, R3DModel
from retf_ros.fusion.inputs import prepare_depth, prepare_rgb

WINDOWS = (64, 256)
REPEATS = 25
IMAGE_SIZES = ((24, 32), (48, 64), (120, 160))  # the demo checkpoint's, R3DConfig's default, the issue's depth map
VGA = (480, 640)


def issue_config(frames: int) -> R3DConfig:
    """The authors' configuration for windows of up to ``frames`` frames."""
    return R3DConfig(num_classes=48, modalities=("rgb", "depth"), feature_dims={"rgb": 2048},
                     depth_encoder="flatten", image_size=(120, 160), dim=128, encoder_layers=2,
                     decoder_layers=1, num_queries=8, heads=8, fusion_heads=8, exchange_ratio=0.3,
                     max_frames=frames)


def _timed(fn, device: torch.device) -> tuple[float, float]:
    return median_wall_and_cpu_ms(fn, device, REPEATS, warmup=5)


def forward_figures(device: torch.device, steps: int, precision: str = "fp32") -> dict[str, tuple[float, float]]:
    """(median wall ms, median thread CPU ms) of the whole forward, the fuser alone and
    forward_tokens at B=1, T=steps, under autocast to ``precision`` (fp32: none)."""
    torch.manual_seed(0)
    model = R3DModel(issue_config(steps)).to(device).eval()
    h, w = model.config.image_size
    inputs = {"rgb": torch.randn(1, steps, 2048, device=device),
              "depth": torch.rand(1, steps, 1, h, w, device=device)}
    mask = torch.ones(1, steps, dtype=torch.bool, device=device)
    with torch.no_grad(), autocast(device, PRECISIONS[precision]):
        tokens = model.encode_frames(inputs)
        stacked = [tokens[m] for m in model.config.modalities]
        valid = torch.ones(1, len(stacked), steps, dtype=torch.bool, device=device)
        return {"forward": _timed(lambda: model(inputs, mask), device),
                "fuser": _timed(lambda: model.fusion(stacked, valid), device),
                "temporal": _timed(lambda: model.forward_tokens(tokens, mask), device)}


def frame_figures(size: tuple[int, int]) -> dict[str, tuple[float, float]]:
    """(median wall ms, median thread CPU ms) to prepare one VGA frame of each kind for a model
    that sees ``size`` (h, w)."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (*VGA, 3), dtype=np.uint8)
    millimetres = rng.integers(300, 5000, VGA).astype(np.uint16)
    millimetres[rng.random(VGA) < 0.1] = 0
    metres = (millimetres / 1000.0).astype(np.float32)
    metres[millimetres == 0] = np.nan
    cpu = torch.device("cpu")
    return {"rgb": _timed(lambda: prepare_rgb(rgb, size), cpu),
            "depth_u16": _timed(lambda: prepare_depth(millimetres, size), cpu),
            "depth_f32": _timed(lambda: prepare_depth(metres, size), cpu)}


def _ms(figure: tuple[float, float], device: torch.device) -> str:
    wall, cpu = figure
    return f"{wall:.2f} ms" if device.type != "cpu" else f"{wall:.2f} ms (CPU {cpu:.2f})"


def run(args) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gpu = getattr(args, "gpu", False)
        device = torch.device("cuda") if gpu else torch.device("cpu")
        load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
        print(f"[model] machine: {machine_description(device)}{load}")
        for precision in ("fp32", "fp16", "bf16") if gpu else ("fp32",):
            for steps in WINDOWS:
                f = forward_figures(device, steps, precision)
                print(f"[model] R3D at the authors' configuration (2048-d RGB features + 160x120 depth flattened, "
                      f"C=128, 2 enc / 1 dec layers, 8 queries, 8 heads, rho 0.3, B=1, all frames valid) on {device} "
                      f"{precision}, T={steps}: forward {_ms(f['forward'], device)}; fuser alone {_ms(f['fuser'], device)}; "
                      f"forward_tokens (fuser + temporal model + heads) {_ms(f['temporal'], device)} "
                      f"(median of {REPEATS}; wall, and the thread's CPU time)")
        cpu = torch.device("cpu")
        for size in IMAGE_SIZES:
            f = frame_figures(size)
            rgb_u16 = tuple(a + b for a, b in zip(f["rgb"], f["depth_u16"]))
            rgb_f32 = tuple(a + b for a, b in zip(f["rgb"], f["depth_f32"]))
            print(f"[model] per-frame path, one VGA frame -> {size[0]}x{size[1]} (retf_ros.fusion.inputs, CPU): "
                  f"RGB {_ms(f['rgb'], cpu)}, depth uint16 mm {_ms(f['depth_u16'], cpu)}, depth float32 m "
                  f"{_ms(f['depth_f32'], cpu)} -> RGB + depth {_ms(rgb_u16, cpu)} (uint16) / {_ms(rgb_f32, cpu)} "
                  f"(float32) (median of {REPEATS})")
    finally:
        torch.set_num_threads(threads)
