"""Inference forward of the temporal transformer's layers on scaled_dot_product_attention.

R3DModel keeps torch's ``nn.TransformerEncoder`` / ``nn.TransformerDecoder`` (their parameters
are the checkpoint's names, and training uses them, dropout included). Out of training their
forward is slower than it needs to be on a CPU: the encoder layer's fused path computes
attention as bmm + softmax (a masked softmax as soon as a key padding mask is passed) and the
decoder layer goes through ``F.multi_head_attention_forward``'s generic Python. These
functions compute the same post-norm layers (the only kind R3DModel builds: ReLU feed-forward,
``norm_first=False``, batch first) with the parameters of those modules, attention through
``F.scaled_dot_product_attention`` and no key padding mask when nothing is padded.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from retf_ros.fusion.cpu_linear import linear


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, L, C) -> (B, H, L, C / H)."""
    b, length, c = x.shape
    return x.view(b, length, heads, c // heads).transpose(1, 2)


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
               keep: torch.Tensor | None) -> torch.Tensor:
    """Multi-head attention of projected q (B, Lq, C), k, v (B, Lk, C); keep: None (every key)
    or (B, 1, 1, Lk) bool, True = a key that takes part -> (B, Lq, C) before the output projection."""
    out = F.scaled_dot_product_attention(_heads(q, heads), _heads(k, heads), _heads(v, heads), attn_mask=keep)
    return out.transpose(1, 2).reshape(q.shape)


def _feed_forward(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """linear2(relu(linear1(x))) through cpu_linear (the ReLU fused into linear1 on the CPU)."""
    return linear(linear(x, layer.linear1, "relu"), layer.linear2)


def _keep_mask(padding: torch.Tensor | None) -> torch.Tensor | None:
    """(B, T) bool, True = padded -> (B, 1, 1, T) bool, True = attended; None stays None."""
    return None if padding is None else (~padding)[:, None, None, :]


def encoder_inference(encoder: nn.TransformerEncoder, x: torch.Tensor,
                      padding: torch.Tensor | None) -> torch.Tensor:
    """``encoder(x, src_key_padding_mask=padding)`` out of training. x: (B, T, C) -> (B, T, C)."""
    keep = _keep_mask(padding)
    for layer in encoder.layers:
        attn = layer.self_attn
        q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        x = layer.norm1(x + attn.out_proj(_attention(q, k, v, attn.num_heads, keep)))
        x = layer.norm2(x + _feed_forward(layer, x))
    return x


def decoder_inference(decoder: nn.TransformerDecoder, queries: torch.Tensor, memory: torch.Tensor,
                      padding: torch.Tensor | None) -> torch.Tensor:
    """``decoder(queries, memory, memory_key_padding_mask=padding)`` out of training.
    queries: (B, Q, C), memory: (B, T, C) -> (B, Q, C)."""
    keep = _keep_mask(padding)
    x = queries
    c = x.shape[-1]
    for layer in decoder.layers:
        attn = layer.self_attn
        q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        x = layer.norm1(x + attn.out_proj(_attention(q, k, v, attn.num_heads, None)))
        cross = layer.multihead_attn
        q = F.linear(x, cross.in_proj_weight[:c], cross.in_proj_bias[:c])
        k, v = F.linear(memory, cross.in_proj_weight[c:], cross.in_proj_bias[c:]).chunk(2, dim=-1)
        x = layer.norm2(x + cross.out_proj(_attention(q, k, v, cross.num_heads, keep)))
        x = layer.norm3(x + _feed_forward(layer, x))
    return x
