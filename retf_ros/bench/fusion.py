"""Fusion-core figures: the effective-rank fast path against svdvals, and the share of a model
forward spent in the RTF exchange + fusion block."""
from __future__ import annotations

import time

import torch

from retf_ros.bench import machine_description, median_ms, sync
from retf_ros.fusion import R3DConfig, R3DModel, effective_rank
from retf_ros.fusion.erank import entropy_effective_rank


def _erank_via_svdvals(z: torch.Tensor) -> torch.Tensor:
    return entropy_effective_rank(torch.linalg.svdvals(z))


def erank_speed(device: torch.device, batch: int = 32, steps: int = 64, channels: int = 128) -> tuple[float, float]:
    """(gram_ms, svdvals_ms) for one batched call on (B, T, C) float32 tokens."""
    z = torch.randn(batch, steps, channels, device=device)
    return (median_ms(lambda: effective_rank(z), device),
            median_ms(lambda: _erank_via_svdvals(z), device))


def fusion_share(device: torch.device, precision: torch.dtype | None = None, steps: int = 64,
                 repeats: int = 20) -> tuple[float, float]:
    """(forward_ms, share of it inside model.fusion) for B=1, T=steps, all three modalities."""
    torch.manual_seed(0)
    model = R3DModel(R3DConfig(num_classes=10, max_frames=max(64, steps))).to(device).eval()
    h, w = model.config.image_size
    inputs = {"rgb": torch.rand(1, steps, 3, h, w, device=device),
              "depth": torch.rand(1, steps, 1, h, w, device=device),
              "skeleton": torch.randn(1, steps, 25, 3, device=device)}
    mask = torch.ones(1, steps, dtype=torch.bool, device=device)
    inside: list[float] = []

    def before(*_):
        sync(device)
        inside.append(-time.perf_counter())

    def after(*_):
        sync(device)
        inside[-1] += time.perf_counter()

    hooks = [model.fusion.register_forward_pre_hook(before), model.fusion.register_forward_hook(after)]
    autocast = torch.autocast(device.type, dtype=precision) if precision is not None else torch.autocast(
        device.type, enabled=False)

    def forward():
        with torch.no_grad(), autocast:
            model(inputs, mask)

    total = median_ms(forward, device, repeats=repeats)
    for hook in hooks:
        hook.remove()
    fusion_ms = sorted(inside[-repeats:])[repeats // 2] * 1e3
    return total, fusion_ms / total


def run(args) -> None:
    devices = [torch.device("cuda")] if getattr(args, "gpu", False) else [torch.device("cpu")]
    for device in devices:
        print(f"[fusion] machine: {machine_description(device)}")
        gram, svd = erank_speed(device)
        print(f"[fusion] effective rank (B=32, T=64, C=128): Gram eigvalsh {gram:.2f} ms, "
              f"svdvals {svd:.2f} ms -> fast path {svd / gram:.1f}x faster (goal > 1x)")
        precisions = [None] if device.type == "cpu" else [None, torch.float16, torch.bfloat16]
        for precision in precisions:
            total, share = fusion_share(device, precision)
            name = "fp32" if precision is None else str(precision).replace("torch.", "")
            print(f"[fusion] R3D forward (B=1, T=64, rgb+depth+skeleton, {name}) on {device}: {total:.1f} ms, "
                  f"RTF exchange + fusion block {100 * share:.1f}% of it (goal < 15%)")
