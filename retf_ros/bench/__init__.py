"""Benchmarks (`make bench`, `make gpu-check`): measured figures printed with the machine they
ran on. Each area has a module with ``run(args)``; ``python -m retf_ros.bench`` runs them all.

Allowed imports: any package of retf_ros except the CLI (``cli``, ``*.commands``). rclpy only
in ``node`` and ``pose``, to tell whether it is installed before they start the nodes through the
harness."""
from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable

import torch


def machine_description(device: torch.device | None = None) -> str:
    """One line naming the CPU (and GPU when used), core count, torch version and threads."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} torch threads"
    if device is not None and device.type == "cuda":
        text += f", GPU {torch.cuda.get_device_name(device)}"
    return text


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn: Callable[[], object], device: torch.device, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time of ``fn`` in milliseconds (device-synchronised)."""
    return median_wall_and_cpu_ms(fn, device, repeats, warmup)[0]


def median_wall_and_cpu_ms(fn: Callable[[], object], device: torch.device, repeats: int = 20,
                           warmup: int = 3) -> tuple[float, float]:
    """(median wall ms, median CPU ms of the calling thread) of ``fn`` (device-synchronised).

    On a CPU shared with other work the wall time includes the time the thread waited for a
    core; its CPU time does not, so the two together tell the cost from the load."""
    for _ in range(warmup):
        fn()
    sync(device)
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        sync(device)
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.thread_time() - start_cpu) * 1e3)
    return statistics.median(wall), statistics.median(cpu)
