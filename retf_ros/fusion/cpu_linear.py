"""A linear layer (+ ReLU / GELU) that takes oneDNN's GEMM on the CPU when that is faster.

torch's CPU ``F.linear`` runs MKL's sgemm. On the AMD EPYC CPUs this project is measured on,
oneDNN's fp32 GEMM (``torch.ops.mkldnn._linear_pointwise``, the kernel torch's own compiler
uses for CPU linears) was measured faster (one thread) for the big frame embeddings (the
flattened 160x120 depth map, 2048-d features) and, from 128 rows on, for the per-token layers,
and it applies the ReLU / GELU (exact erf form) in the same pass. It is slower for a few rows (a streaming frame),
so it is taken only where it was measured faster, and only where it computes exactly what the
plain path would: fp32 CPU tensors, no autocast, nothing that needs a gradient (the op has no
backward). Everywhere else (training, GPU, bf16, small inputs) the plain ``F.linear`` runs.
Results agree with ``F.linear`` to float round-off (a different summation order).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.weak import WeakIdKeyDictionary

ACTIVATIONS = {None: (lambda x: x), "relu": F.relu, "gelu": F.gelu}
# Measured on the 2-core AMD EPYC (one thread): oneDNN wins from 8 rows for inputs of >= 1024
# features and from 128 rows for the 128/512-wide layers of the fuser and temporal model.
_MIN_ROWS = 8
_MIN_ROWS_NARROW = 128
_WIDE_INPUT = 1024


def _onednn_linear_available() -> bool:
    return (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))


_ONEDNN = _onednn_linear_available()
# weight -> (data_ptr, version, the weight in oneDNN's blocked layout). Only for the wide layers:
# reordering on every call cost 0.5-0.7 ms of a 3-13 ms depth projection (T = 64 / 256, measured
# here with one thread). The version counter moves with every in-place change (optimizer step,
# load_state_dict), the data pointer with a replaced .data, so a stale layout is never used.
# Costs one copy of the weight.
_BLOCKED_WEIGHTS = WeakIdKeyDictionary()  # by identity: a tensor's == is elementwise


def _blocked_weight(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """``weight`` (out, in) reordered for oneDNN (tuned for ``rows``, valid for any), reused while unchanged."""
    cached = _BLOCKED_WEIGHTS.get(weight)
    if cached is not None and cached[:2] == (weight.data_ptr(), weight._version):
        return cached[2]
    blocked = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), rows)
    _BLOCKED_WEIGHTS[weight] = (weight.data_ptr(), weight._version, blocked)
    return blocked


def takes_onednn(x: torch.Tensor, layer: nn.Linear) -> bool:
    """Whether ``linear(x, layer)`` runs on oneDNN (x: (..., F) input of ``layer``)."""
    if not _ONEDNN or x.device.type != "cpu" or x.dtype != torch.float32 or layer.weight.dtype != torch.float32:
        return False
    if torch.is_autocast_enabled("cpu"):
        return False
    if torch.is_grad_enabled() and (x.requires_grad or layer.weight.requires_grad):
        return False
    rows = x.numel() // max(x.shape[-1], 1)
    return rows >= (_MIN_ROWS if layer.in_features >= _WIDE_INPUT else _MIN_ROWS_NARROW)


def linear(x: torch.Tensor, layer: nn.Linear, activation: str | None = None) -> torch.Tensor:
    """``activation(layer(x))`` for x (..., F_in) -> (..., F_out); activation None, "relu" or "gelu"."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(a for a in ACTIVATIONS if a)} or None, got {activation!r}")
    if not takes_onednn(x, layer):
        return ACTIVATIONS[activation](F.linear(x, layer.weight, layer.bias))
    rows = x.reshape(-1, x.shape[-1])
    weight = _blocked_weight(layer.weight, rows.shape[0]) if layer.in_features >= _WIDE_INPUT else layer.weight
    out = torch.ops.mkldnn._linear_pointwise(rows, weight, layer.bias, activation or "none", [],
                                             "none" if activation == "gelu" else "")
    return out.view(*x.shape[:-1], layer.out_features)
