"""Effective rank: the published recipe, its fast Gram path, and the derived gain measures."""
import math

import pytest
import torch

from retf_ros.fusion import effective_rank, effective_rank_masked, inactive_channels, mutual_gain, rank_gain


def reference_erank(z: torch.Tensor) -> float:
    """docs/method.md section 2 recipe through a direct SVD, float64."""
    s = torch.linalg.svdvals(z.double())
    s = s[s > 1e-12]
    p = s / (s.sum() + 1e-7)
    return math.exp(float(-(p * torch.log(p + 1e-7)).sum()))


def matrix_with_singular_values(values, t=40, c=24, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(t, t, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(c, c, generator=g, dtype=torch.float64))
    s = torch.zeros(t, c, dtype=torch.float64)
    for i, value in enumerate(values):
        s[i, i] = value
    return u @ s @ v.T


def test_identity_has_full_effective_rank():
    for n in (1, 5, 64):
        assert effective_rank(torch.eye(n)).item() == pytest.approx(n, rel=1e-5)


def test_rank_one_matrix_has_effective_rank_one():
    z = torch.randn(50, 1) @ torch.randn(1, 30)
    assert effective_rank(z).item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("k", [1, 3, 7, 20])
def test_k_equal_singular_values_give_k(k):
    z = matrix_with_singular_values([2.5] * k)
    assert effective_rank(z).item() == pytest.approx(k, rel=1e-5)


def test_scale_and_permutation_invariance():
    z = torch.randn(32, 48, dtype=torch.float64)
    base = effective_rank(z).item()
    assert effective_rank(z * 37.0).item() == pytest.approx(base, rel=1e-5)
    assert effective_rank(z[torch.randperm(32)][:, torch.randperm(48)]).item() == pytest.approx(base, rel=1e-6)


@pytest.mark.parametrize("shape", [(64, 128), (128, 64), (7, 7), (3, 128)])
def test_gram_fast_path_matches_direct_svd(shape):
    torch.manual_seed(1)
    for z in (torch.randn(*shape), torch.randn(shape[0], 4) @ torch.randn(4, shape[1]),
              torch.randn(*shape) * torch.logspace(0, -6, shape[1])):
        assert effective_rank(z).item() == pytest.approx(reference_erank(z), abs=1e-5)


def test_uncentred_by_default_and_centred_on_request():
    z = torch.randn(30, 20) + 5.0  # a large common offset is one strong direction when uncentred
    assert effective_rank(z).item() == pytest.approx(reference_erank(z), abs=1e-5)
    centred = z - z.mean(dim=0, keepdim=True)
    assert effective_rank(z, centered=True).item() == pytest.approx(reference_erank(centred), abs=1e-5)
    assert effective_rank(z, centered=True).item() > effective_rank(z).item() + 1.0


def test_batched_equals_looped():
    z = torch.randn(3, 4, 16, 12)
    batched = effective_rank(z)
    assert batched.shape == (3, 4)
    looped = torch.stack([torch.stack([effective_rank(z[i, j]) for j in range(4)]) for i in range(3)])
    torch.testing.assert_close(batched, looped, rtol=0, atol=1e-6)


def test_never_tracks_gradients():
    z = torch.randn(10, 8, requires_grad=True)
    out = effective_rank(z)
    assert not out.requires_grad and out.grad_fn is None


def test_zero_matrix_has_effective_rank_one():
    assert effective_rank(torch.zeros(5, 6)).item() == pytest.approx(1.0)


def test_masked_effective_rank_ignores_padding():
    z = torch.randn(2, 12, 16)
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[1, 7:] = False
    garbage = z.clone()
    garbage[1, 7:] = 1e3
    out = effective_rank_masked(garbage, mask)
    assert out[0].item() == pytest.approx(effective_rank(z[0]).item(), abs=1e-5)
    assert out[1].item() == pytest.approx(effective_rank(z[1, :7]).item(), abs=1e-5)
    assert torch.isnan(effective_rank_masked(z, torch.zeros(2, 12, dtype=torch.bool))).all()


def test_inactive_channels_counts_channels_zero_on_every_valid_frame():
    z = torch.ones(3, 6, 8)
    z[0, :, :3] = 0.0                 # three channels never fire
    z[1, :, 5] = 0.0
    z[1, 2, 5] = -0.5                 # fires once: active
    z[2, :, :] = 0.0
    z[2, 4:, :] = 7.0                 # only on padded frames
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[2, 4:] = False
    assert inactive_channels(z, mask).tolist() == [3.0, 0.0, 8.0]
    assert torch.isnan(inactive_channels(z, torch.zeros(3, 6, dtype=torch.bool))).all()


def test_rank_gain_and_mutual_gain():
    assert rank_gain(torch.tensor([2.0, 4.0]), torch.tensor([3.0, 6.0])) == pytest.approx(1.5)
    assert mutual_gain(1.0, 3.0) == pytest.approx(1.5)
    assert mutual_gain(2.0, 2.0) == pytest.approx(2.0)
    assert mutual_gain(2.0, 0.0) == 0.0
    assert mutual_gain(-1.0, 4.0) == 0.0
