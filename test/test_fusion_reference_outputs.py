"""R3DModel.forward_tokens against outputs frozen from the implementation before the fast
paths (issue 20: no padding mask when every frame is observed, the two-modality shortcut of
the cross-modal attention, ...). The fast paths must change the speed, not the numbers.

``data/r3d_reference_outputs.safetensors`` was written by running this file as a script
(``PYTHONPATH=. python test/test_fusion_reference_outputs.py``) at commit 95d7b0b, before
any of those changes. Each case builds its model from a config, gives every parameter outside
the per-modality encoders a value drawn from a seeded generator (so the stored numbers do
not depend on module initialisation order or on the encoders), and feeds seeded tokens, so
only forward_tokens' arithmetic decides the outputs. Regenerate only for an intended change
of the model's maths, and say so in the commit.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from retf_ros.fusion import R3DConfig, R3DModel

REFERENCE = Path(__file__).resolve().parent / "data" / "r3d_reference_outputs.safetensors"
K = 5

SMALL = dict(num_classes=K, dim=32, heads=4, fusion_heads=4, max_frames=16, num_queries=4)
# The issue's configuration (precomputed 2048-d RGB features + flattened 160x120 depth, C=128,
# 8 heads, 2 encoder / 1 decoder layers, 8 queries, rho 0.3), with fewer frames to keep the file small.
ISSUE = dict(num_classes=K, modalities=("rgb", "depth"), feature_dims={"rgb": 2048}, depth_encoder="flatten",
             image_size=(120, 160), max_frames=32)

# name -> (config, lengths of the valid frames per sample, T, absent (sample, modality, frames), train)
CASES = {
    "rtf3_unpadded": (SMALL, [12], 12, [], False),
    "rtf3_padded_absent": (SMALL, [12, 7], 12, [(0, "skeleton", range(3, 6)), (0, "depth", [4]),
                                                   (1, "rgb", [2]), (1, "depth", [2]), (1, "skeleton", [2])], False),
    "rtf3_mean_partner_padded": (dict(SMALL, exchange_partner="mean"), [12, 9], 12, [(1, "depth", range(0, 4))], False),
    "rtf2_issue_unpadded": (ISSUE, [32], 32, [], False),
    "rtf2_issue_padded_absent": (ISSUE, [32, 20], 32, [(0, "depth", range(5, 9)), (1, "rgb", [0])], False),
    "rtf2_single_modality_frames": (dict(SMALL, modalities=("rgb", "depth")), [10], 10,
                                    [(0, "depth", range(0, 10, 2))], False),
    "no_exchange2_unpadded": (dict(SMALL, modalities=("rgb", "depth"), fusion="no_exchange"), [10], 10, [], False),
    "rtf3_train_unpadded": (dict(SMALL, dropout=0.0), [12], 12, [], True),
    "rtf3_train_padded": (dict(SMALL, dropout=0.0), [12, 8], 12, [(0, "depth", [3])], True),
}
OUTPUTS = ("action_logits", "duration_logits", "segmentation_logits", "fused")


def build_case(name: str):
    """(model, tokens, mask, present, train) of one case, all drawn from a generator seeded by the case."""
    config, lengths, t, absent, train = CASES[name]
    model = R3DModel(R3DConfig(**config))
    g = torch.Generator().manual_seed(sum(map(ord, name)))
    with torch.no_grad():
        for pname, p in sorted(model.named_parameters()):
            if pname.startswith("encoders."):
                continue
            value = torch.randn(p.shape, generator=g) * 0.3
            is_norm_scale = pname.endswith(".weight") and p.dim() == 1
            p.copy_(value + 1.0 if is_norm_scale else value)
    model.train(train)
    b, c = len(lengths), model.config.dim
    tokens = {}
    for m in model.config.modalities:
        x = torch.relu(torch.randn(b, t, c, generator=g))
        x[..., : c // 8] = 0.0  # channels that never fire: the exchange selects these first
        tokens[m] = x
    mask = torch.arange(t).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    present = {m: torch.ones(b, t, dtype=torch.bool) for m in model.config.modalities}
    for sample, modality, frames in absent:
        present[modality][sample, list(frames)] = False
    return model, tokens, mask, present, train


def run_case(name: str) -> dict[str, torch.Tensor]:
    """The outputs the reference file stores for a case (and, in training mode, the gradients
    of a fixed function of them with respect to the tokens)."""
    model, tokens, mask, present, train = build_case(name)
    if train:
        tokens = {m: x.requires_grad_() for m, x in tokens.items()}
        out = model.forward_tokens(tokens, mask, present)
    else:
        with torch.no_grad():
            out = model.forward_tokens(tokens, mask, present)
    result = {f"{name}.{k}": getattr(out, k) for k in OUTPUTS}
    result.update({f"{name}.tokens_after.{m}": x for m, x in out.tokens_after.items()})
    if train:
        g = torch.Generator().manual_seed(7)
        total = sum((getattr(out, k) * torch.randn(getattr(out, k).shape, generator=g)).sum() for k in OUTPUTS)
        total.backward()
        result.update({f"{name}.grad.{m}": x.grad for m, x in tokens.items()})
    return {k: v.detach().contiguous() for k, v in result.items()}


def _reference() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(REFERENCE))


@pytest.mark.parametrize("name", list(CASES))
def test_forward_tokens_matches_the_outputs_frozen_before_the_fast_paths(name):
    torch.set_num_threads(1)
    reference = _reference()
    expected = {k: v for k, v in reference.items() if k.startswith(f"{name}.")}
    got = run_case(name)
    assert set(got) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, atol=2e-5, rtol=1e-4, msg=lambda m: f"{key}: {m}")


def test_reference_file_covers_padding_absent_modalities_and_training():
    """The cases exercise what the fast paths branch on (guards against a fixture that only
    covers the easy path)."""
    names = list(CASES)
    padded = [n for n in names if min(CASES[n][1]) < CASES[n][2]]
    absent = [n for n in names if CASES[n][3]]
    trained = [n for n in names if CASES[n][4]]
    assert padded and absent and trained and len(padded) < len(names)
    keys = _reference()
    assert all(any(k.startswith(f"{n}.") for k in keys) for n in names)


if __name__ == "__main__":
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    outputs = {}
    for case in CASES:
        outputs.update(run_case(case))
    REFERENCE.parent.mkdir(exist_ok=True)
    save_file(outputs, str(REFERENCE))
    print(f"wrote {len(outputs)} tensors to {REFERENCE}", file=sys.stderr)
