"""Faulty inputs on purpose: one modality frozen (its first frame repeated) or replaced by noise.

Used to measure what the effective-rank health sees when a camera hangs or a sensor delivers
garbage (``retf calibrate --input``), and by the synthetic publisher to inject those faults
into a running node. Pure numpy, in the units of a FrameSet / clip store: rgb (H, W, 3) uint8,
depth (H, W) uint16 millimetres or float metres, skeleton (J, 3) float metres.
"""
from __future__ import annotations

import numpy as np

FAULTS = ("frozen", "noise")


def noise_like(modality: str, frame: np.ndarray, reference: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A noise frame of ``frame``'s shape and dtype: rgb uniform 0-255, depth uniform 0.5-4 m
    (every pixel valid), skeleton joints uniform in a 1 m cube around ``reference``'s mean joint."""
    if modality == "rgb":
        return rng.integers(0, 256, size=frame.shape, dtype=np.uint8)
    if modality == "depth":
        metres = rng.uniform(0.5, 4.0, size=frame.shape)
        return (metres * 1000.0).astype(frame.dtype) if frame.dtype == np.uint16 else metres.astype(frame.dtype)
    if modality == "skeleton":
        centre = np.nanmean(np.asarray(reference, dtype=np.float64), axis=0)
        centre = np.where(np.isfinite(centre), centre, 0.0)
        return (centre + rng.uniform(-0.5, 0.5, size=frame.shape)).astype(frame.dtype)
    raise ValueError(f"no noise for modality {modality!r}")


class ModalityFault:
    """Applies ``fault`` ("frozen" | "noise") to one modality of successive frames.

    ``frozen``: every frame is replaced by the first one this object saw (a hung driver
    republishing its last image); ``noise``: by a fresh ``noise_like`` frame each time.
    """

    def __init__(self, modality: str, fault: str, seed: int = 0):
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}, got {fault!r}")
        self.modality, self.fault = modality, fault
        self._rng = np.random.default_rng(seed)
        self._first: np.ndarray | None = None

    def apply(self, frame: np.ndarray) -> np.ndarray:
        if self._first is None:
            self._first = np.array(frame, copy=True)
        if self.fault == "frozen":
            return self._first
        return noise_like(self.modality, frame, self._first, self._rng)
