"""The RTF exchange (docs/method.md section 3): selection, blending, partners, masks, gradients."""
import pytest
import torch

from retf_ros.fusion import effective_rank, inactive_channels, rank_exchange


def reference_exchange(tokens, alpha, ratio, masks, partner="most_informative"):
    """Straight loop transcription of docs/method.md section 3, for comparison."""
    m = len(tokens)
    b, t, c = tokens[0].shape
    k = int(ratio * c)
    out = [x.clone() for x in tokens]
    for s in range(b):
        valid = [masks[i][s] for i in range(m)]
        var = []
        for i in range(m):
            rows = tokens[i][s][valid[i]]
            var.append(rows.var(dim=0, unbiased=False) if len(rows) else torch.zeros(c))
        active = [int(valid[i].sum()) >= 2 for i in range(m)]
        for i in range(m):
            donors = [j for j in range(m) if j != i and active[j]]
            if not active[i] or not donors:
                continue
            order = sorted(range(c), key=lambda ch: (float(var[i][ch]), ch))[:k]
            for ch in order:
                for step in range(t):
                    if not valid[i][step]:
                        continue
                    if partner == "most_informative":
                        best = max(donors, key=lambda j: (float(var[j][ch]), -j))
                        if not valid[best][step]:
                            continue
                        y = tokens[best][s, step, ch]
                    else:
                        here = [j for j in donors if valid[j][step]]
                        if not here:
                            continue
                        y = sum(tokens[j][s, step, ch] for j in here) / len(here)
                    a = alpha[ch]
                    out[i][s, step, ch] = a * tokens[i][s, step, ch] + (1 - a) * y
    return out


def test_hand_computed_two_modality_example():
    a = torch.tensor([[[1., 0, 5, 2], [2, 0, 5, 4], [3, 0, 5, 9]]])
    b = torch.tensor([[[0., 1, 1, 0], [0, 3, 1, 0], [0, 5, 1, 1]]])
    alpha = torch.tensor([0.5, 0.25, 0.5, 0.75])
    a_out, b_out = rank_exchange([a, b], alpha, ratio=0.5)
    # a: variances (2/3, 0, 0, 26/3) -> channels 1 and 2 receive from b
    expected_a = torch.tensor([[[1., 0.75, 3, 2], [2, 2.25, 3, 4], [3, 3.75, 3, 9]]])
    # b: variances (0, 8/3, 0, 2/9) -> channels 0 and 2 receive from a
    expected_b = torch.tensor([[[0.5, 1, 3, 0], [1, 3, 3, 0], [1.5, 5, 3, 1]]])
    torch.testing.assert_close(a_out, expected_a)
    torch.testing.assert_close(b_out, expected_b)


def test_ties_broken_by_channel_index():
    a = torch.zeros(1, 4, 5)
    a[..., 3] = torch.arange(4.0)
    a[..., 4] = torch.arange(4.0) * 2
    b = torch.ones(1, 4, 5)
    a_out, _ = rank_exchange([a, b], torch.full((5,), 0.5), ratio=0.4)  # k = 2 of three zero-variance channels
    changed = (a_out != a).any(dim=1)[0]
    assert changed.tolist() == [True, True, False, False, False]


def test_selects_exactly_the_lowest_variance_channels_and_leaves_others_bit_identical():
    torch.manual_seed(0)
    x = [torch.randn(4, 20, 32) * torch.rand(32) * 3 for _ in range(2)]
    out = rank_exchange(x, torch.full((32,), 0.3), ratio=0.3)
    k = int(0.3 * 32)
    for src, dst in zip(x, out):
        for s in range(4):
            lowest = set(torch.argsort(src[s].var(dim=0, unbiased=False), stable=True)[:k].tolist())
            changed = set(torch.nonzero((dst[s] != src[s]).any(dim=0)).flatten().tolist())
            assert changed == lowest
            untouched = [ch for ch in range(32) if ch not in lowest]
            assert torch.equal(dst[s][:, untouched], src[s][:, untouched])


def test_with_at_least_k_inactive_relu_channels_only_those_receive():
    torch.manual_seed(1)
    x = [torch.relu(torch.randn(4, 16, 128)) for _ in range(3)]
    for s in range(4):  # 50 dead units in modality 0, a different set per sample
        x[0][s][:, torch.randperm(128)[:50]] = 0.0
    out = rank_exchange(x, torch.full((128,), 0.5), ratio=0.3)  # k = 38 < 50
    mask = torch.ones(4, 16, dtype=torch.bool)
    assert inactive_channels(x[0], mask).tolist() == [50.0] * 4
    dead = (x[0] == 0).all(dim=1)  # (B, C)
    changed = (out[0] != x[0]).any(dim=1)
    assert changed.sum(dim=1).tolist() == [38] * 4
    assert not (changed & ~dead).any()


@pytest.mark.parametrize("partner", ["most_informative", "mean"])
def test_matches_reference_with_three_modalities_and_masks(partner):
    torch.manual_seed(3)
    b, t, c = 5, 9, 16
    tokens = [torch.randn(b, t, c) * torch.rand(c) for _ in range(3)]
    masks = [torch.rand(b, t) > 0.25 for _ in range(3)]
    masks[1][2] = False          # modality 1 missing for sample 2
    masks[0][3, 1:] = False      # one valid frame only: no exchange for it
    alpha = torch.rand(c)
    got = rank_exchange(tokens, alpha, 0.3, mask=masks, partner=partner)
    want = reference_exchange(tokens, alpha, 0.3, masks, partner)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_most_informative_partner_is_the_strongest_other_modality_per_channel():
    t = 6
    recv = torch.zeros(1, t, 2)
    weak = torch.zeros(1, t, 2)
    strong = torch.zeros(1, t, 2)
    recv[..., 1] = torch.linspace(0, 10, t)
    weak[..., 0] = torch.linspace(0, 1, t)
    strong[..., 0] = torch.linspace(0, 4, t)
    weak[..., 1] = strong[..., 1] = 7.0
    out = rank_exchange([recv, weak, strong], torch.zeros(2), ratio=0.5)[0]  # a = 0: take the partner
    torch.testing.assert_close(out[..., 0], strong[..., 0])
    torch.testing.assert_close(out[..., 1], recv[..., 1])


def test_padding_neither_selects_nor_is_modified():
    torch.manual_seed(1)
    x = [torch.randn(2, 8, 16) for _ in range(3)]
    mask = torch.ones(2, 8, dtype=torch.bool)
    base = rank_exchange(x, torch.full((16,), 0.5), 0.3, mask=mask)
    padded = [torch.cat([xi, torch.full((2, 5, 16), float("nan"))], dim=1) for xi in x]
    pmask = torch.cat([mask, torch.zeros(2, 5, dtype=torch.bool)], dim=1)
    out = rank_exchange(padded, torch.full((16,), 0.5), 0.3, mask=pmask)
    for o, bo, p in zip(out, base, padded):
        assert torch.equal(o[:, :8], bo)
        assert torch.isnan(o[:, 8:]).all()  # padded frames returned untouched


def test_fewer_than_two_valid_frames_leaves_sample_unchanged():
    x = [torch.randn(2, 4, 8) for _ in range(2)]
    mask = torch.tensor([[True, False, False, False], [True, True, True, True]])
    out = rank_exchange(x, torch.full((8,), 0.5), 0.5, mask=mask)
    assert torch.equal(out[0][0], x[0][0]) and torch.equal(out[1][0], x[1][0])
    assert not torch.equal(out[0][1], x[0][1])


def test_gradients_reach_inputs_and_alpha_but_not_through_selection():
    torch.manual_seed(2)
    x = [torch.randn(2, 6, 10, requires_grad=True) for _ in range(2)]
    alpha = torch.full((10,), 0.4, requires_grad=True)
    out = rank_exchange(x, alpha, 0.3)
    untouched = out[0] == x[0]
    (out[0] * untouched).sum().backward()
    # unchanged entries pass gradient 1 straight through; nothing else reaches x[0] or x[1]
    torch.testing.assert_close(x[0].grad, untouched.float())
    assert torch.count_nonzero(x[1].grad) == 0
    out = rank_exchange(x, alpha, 0.3)
    sum(o.sum() for o in out).backward()
    assert alpha.grad is not None and torch.count_nonzero(alpha.grad) > 0


def test_exchange_raises_effective_rank_when_the_theory_applies():
    """Collapsed channels + a complementary partner: erank rises in at least 95% of samples."""
    g = torch.Generator().manual_seed(7)
    b, t, c, r = 200, 32, 64, 6
    def low_rank(channels):
        z = torch.zeros(b, t, c)
        z[..., channels] = torch.randn(b, t, r, generator=g) @ torch.randn(b, r, len(channels), generator=g)
        return z + 0.01 * torch.randn(b, t, c, generator=g)  # the rest is collapsed (tiny energy)
    rgb = low_rank(list(range(0, 40)))
    depth = low_rank(list(range(24, 64)))
    before = [effective_rank(rgb), effective_rank(depth)]
    after = rank_exchange([rgb, depth], torch.full((c,), 0.5), ratio=0.3)
    for pre, post in zip(before, after):
        rose = (effective_rank(post) > pre).float().mean().item()
        assert rose >= 0.95
