"""Token ring buffer: the last W frames' tokens per modality, kept on the model's device.

Each frame is encoded once (its tokens pushed here); every inference reads the window back in
chronological order. Because the frame encoders see one frame at a time, the cached tokens
equal what encoding the whole window at once would give (token cache == recompute).
"""
from __future__ import annotations

import numpy as np
import torch


class TokenRing:
    """Fixed-capacity FIFO of per-frame tokens; pushing into a full ring drops the oldest frame.

    Storage per modality: (W, C) tokens and (W,) presence flags; (W,) source stamps. A
    modality absent from a frame stores zeros with present=False: the model masks it out
    (never averaged in as zeros).
    """

    def __init__(self, capacity: int, modalities: tuple[str, ...], channels: int,
                 device: torch.device, dtype: torch.dtype = torch.float32):
        if capacity < 1:
            raise ValueError(f"ring capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.modalities = modalities
        self._tokens = {m: torch.zeros(capacity, channels, device=device, dtype=dtype) for m in modalities}
        self._present = {m: torch.zeros(capacity, dtype=torch.bool, device=device) for m in modalities}
        self._stamps = np.zeros(capacity, dtype=np.float64)
        self._next = 0      # slot the next push writes
        self._count = 0     # frames held (<= capacity)

    def __len__(self) -> int:
        return self._count

    def clear(self) -> None:
        self._next = 0
        self._count = 0

    def push(self, tokens: dict[str, torch.Tensor | None], stamp: float) -> None:
        """Store one frame. tokens: modality -> (C,) tensor, or None when not present."""
        slot = self._next
        for m in self.modalities:
            token = tokens.get(m)
            if token is None:
                self._tokens[m][slot].zero_()
                self._present[m][slot] = False
            else:
                self._tokens[m][slot].copy_(token)
                self._present[m][slot] = True
        self._stamps[slot] = stamp
        self._next = (slot + 1) % self.capacity
        self._count = min(self._count + 1, self.capacity)

    def _order(self) -> np.ndarray:
        """Slots of the held frames, oldest first."""
        return (self._next - self._count + np.arange(self._count)) % self.capacity

    def window(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], np.ndarray]:
        """The held frames oldest first: tokens modality -> (1, T, C), present modality -> (1, T)
        bool, stamps (T,) float64 seconds. T = len(self)."""
        order = self._order()
        index = torch.as_tensor(order, device=next(iter(self._present.values())).device)
        tokens = {m: self._tokens[m].index_select(0, index)[None] for m in self.modalities}
        present = {m: self._present[m].index_select(0, index)[None] for m in self.modalities}
        return tokens, present, self._stamps[order]

    def newest_stamp(self) -> float | None:
        return float(self._stamps[(self._next - 1) % self.capacity]) if self._count else None
