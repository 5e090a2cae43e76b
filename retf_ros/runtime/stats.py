"""Summaries of latency samples, one shape everywhere (node diagnostics, stream and bag reports)."""
from __future__ import annotations

from typing import Iterable

import numpy as np


def latency_distribution(values: Iterable[float]) -> dict | None:
    """count, mean, min, p50, p95, max of a sample in ms (None when empty)."""
    x = np.fromiter(values, dtype=np.float64)
    if x.size == 0:
        return None
    return {"count": int(x.size), "mean": float(x.mean()), "min": float(x.min()),
            "p50": float(np.percentile(x, 50)), "p95": float(np.percentile(x, 95)), "max": float(x.max())}
