"""Reports as strict JSON: JSON has no NaN or infinity, and numpy scalars are not JSON numbers."""
from __future__ import annotations

import numpy as np


def json_ready(value):
    """JSON-safe copy of ``value``: NaN/inf -> None and numpy scalars -> Python numbers,
    recursively through dicts (keys become strings), lists and tuples (which become lists)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value
