"""R3D model: shapes for every modality subset, padding invariance, missing modalities,
determinism, bf16 autocast, losses and decoding; and the fusion package's import boundary."""
import ast
import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from retf_ros.fusion import (FUSION_KINDS, R3DConfig, R3DModel, RankEnhancingTokenFuser, build_fusion, decode_future,
                             r3d_losses)
from retf_ros.fusion.inputs import prepare_depth, prepare_rgb, prepare_skeleton

ALL = ("rgb", "depth", "skeleton")
SUBSETS = [s for n in (1, 2, 3) for s in itertools.combinations(ALL, n)]
K, Q = 5, 4


def small_config(modalities=ALL, **kw) -> R3DConfig:
    return R3DConfig(num_classes=K, modalities=modalities, dim=32, image_size=(24, 32), fusion_heads=4,
                     heads=4, max_frames=24, num_queries=Q, **kw)


def make_inputs(b, t, seed=0):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.randint(0, 256, (b, t, 48, 64, 3), generator=g, dtype=torch.uint8)
    depth = (torch.rand(b, t, 48, 64, generator=g) * 4000).to(torch.uint16)
    skel = torch.randn(b, t, 25, 3, generator=g)
    return {"rgb": prepare_rgb(rgb, (24, 32)), "depth": prepare_depth(depth, (24, 32)),
            "skeleton": prepare_skeleton(skel, "kinect_v2_25")}


def make_targets(b, t, mask):
    return {"mask": mask, "frame_labels": torch.randint(0, K, (b, t)),
            "future_classes": torch.tensor([[1, 2, K, -1]] * b),
            "future_durations": torch.tensor([[0.3, 0.7, 0.0, 0.0]] * b)}


@pytest.mark.parametrize("modalities", SUBSETS, ids=["+".join(s) for s in SUBSETS])
def test_forward_backward_shapes_for_every_modality_subset(modalities):
    torch.manual_seed(0)
    model = R3DModel(small_config(modalities))
    b, t = 2, 10
    mask = torch.ones(b, t, dtype=torch.bool)
    out = model(make_inputs(b, t), mask)
    assert out.action_logits.shape == (b, Q, K + 1)
    assert out.duration_logits.shape == (b, Q)
    assert out.segmentation_logits.shape == (b, t, K)
    assert out.fused.shape == (b, t, 32)
    assert set(out.tokens_before) == set(out.tokens_after) == set(modalities)
    loss = r3d_losses(out, make_targets(b, t, mask))["total"]
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads if g is not None)
    assert model.encoders[modalities[0]].proj[1].weight.grad.abs().sum() > 0 if modalities[0] != "skeleton" \
        else model.encoders["skeleton"].net[1].weight.grad.abs().sum() > 0


def test_appending_padded_frames_changes_no_valid_output():
    torch.manual_seed(0)
    model = R3DModel(small_config()).eval()
    inputs = make_inputs(2, 8)
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 6:] = False
    padded = {k: torch.cat([v, torch.randn(2, 5, *v.shape[2:]) * 9], dim=1) for k, v in inputs.items()}
    pmask = torch.cat([mask, torch.zeros(2, 5, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        a, b = model(inputs, mask), model(padded, pmask)
    torch.testing.assert_close(a.action_logits, b.action_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.duration_logits, b.duration_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.segmentation_logits[mask], b.segmentation_logits[:, :8][mask], atol=1e-5, rtol=1e-5)


def test_missing_modality_is_masked_not_zero_filled():
    torch.manual_seed(0)
    model = R3DModel(small_config()).eval()
    inputs = make_inputs(1, 6)
    mask = torch.ones(1, 6, dtype=torch.bool)
    absent = {"depth": torch.zeros(1, 6, dtype=torch.bool)}
    with torch.no_grad():
        tokens = model.encode_frames(inputs)
        first = model.forward_tokens(tokens, mask, absent)
        tokens["depth"] = torch.randn_like(tokens["depth"]) * 50  # whatever depth says must not matter
        second = model.forward_tokens(tokens, mask, absent)
        without = model.forward_tokens({k: v for k, v in tokens.items() if k != "depth"}, mask)
    torch.testing.assert_close(first.fused, second.fused)
    torch.testing.assert_close(first.fused, without.fused)
    assert not first.valid["depth"].any() and first.valid["rgb"].all()


def test_single_present_modality_gets_no_attention_update_and_stays_finite():
    fuser = RankEnhancingTokenFuser(3, dim=16, heads=4).eval()
    tokens = [torch.randn(2, 5, 16) for _ in range(3)]
    valid = torch.zeros(2, 3, 5, dtype=torch.bool)
    valid[:, 0] = True
    out = fuser(tokens, valid)
    assert torch.isfinite(out.fused).all()
    torch.testing.assert_close(out.exchanged[0], tokens[0])  # no partner: nothing exchanged


def test_deterministic_under_a_seed():
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = R3DModel(small_config()).eval()
        with torch.no_grad():
            outs.append(model(make_inputs(2, 7), torch.ones(2, 7, dtype=torch.bool)).action_logits)
    assert torch.equal(outs[0], outs[1])


def test_bf16_autocast_on_cpu_runs():
    torch.manual_seed(0)
    model = R3DModel(small_config()).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(make_inputs(1, 6), torch.ones(1, 6, dtype=torch.bool))
    assert torch.isfinite(out.action_logits.float()).all()
    assert out.action_logits.shape == (1, Q, K + 1)


@pytest.mark.parametrize("kind", FUSION_KINDS)
def test_every_fusion_variant_has_the_same_interface(kind):
    fusion = build_fusion(kind, 3, dim=16, heads=4)
    valid = torch.ones(2, 3, 5, dtype=torch.bool)
    out = fusion([torch.randn(2, 5, 16) for _ in range(3)], valid)
    assert out.fused.shape == (2, 5, 16) and len(out.exchanged) == 3


def test_sum_exchange_is_the_sum_of_the_exchanged_tokens_and_plain_sum_has_no_blend_weights():
    from retf_ros.fusion import rank_exchange

    torch.manual_seed(3)
    tokens = [torch.relu(torch.randn(2, 6, 16)) for _ in range(3)]
    valid = torch.ones(2, 3, 6, dtype=torch.bool)
    valid[1, 2] = False  # skeleton missing in the second sample
    exchanging = build_fusion("sum_exchange", 3, dim=16, ratio=0.25).eval()
    plain = build_fusion("sum", 3, dim=16).eval()
    plain.load_state_dict({k: v for k, v in exchanging.state_dict().items() if k != "alpha_logit"})
    assert "alpha_logit" not in plain.state_dict()
    with torch.no_grad():
        exchanging.alpha_logit.fill_(0.4)
        expected = rank_exchange(tokens, torch.sigmoid(torch.full((16,), 0.4)), 0.25, mask=list(valid.unbind(1)))
        out = exchanging(tokens, valid)
        torch.testing.assert_close(out.fused, plain(expected, valid).fused)
    for got, want in zip(out.exchanged, expected):
        torch.testing.assert_close(got, want)
    assert not torch.equal(out.exchanged[0], tokens[0])


@pytest.mark.parametrize("kind", ["rtf", "sum_exchange"])
def test_an_exchange_ratio_outside_zero_to_one_is_refused_when_the_fusion_is_built(kind):
    with pytest.raises(ValueError, match=r"exchange ratio must be in \[0, 1\), got 1.0"):
        build_fusion(kind, 3, dim=16, heads=4, ratio=1.0)


def test_the_train_command_offers_every_fusion_kind():
    from retf_ros.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    fusion = next(a for a in train._actions if a.dest == "fusion")
    assert tuple(fusion.choices) == FUSION_KINDS


@pytest.mark.parametrize("selection", ["variance", "bn_gamma"])
def test_batch_norm_in_front_of_the_exchange_is_separate_from_the_selection_rule(selection):
    """rtf_bn (variance rule after the BatchNorm) and bn_gamma (|gamma| rule after the same
    BatchNorm) exchange the channels their own rule picks, from the same normalised tokens."""
    from retf_ros.fusion import rank_exchange

    torch.manual_seed(0)
    fuser = RankEnhancingTokenFuser(3, dim=16, heads=4, ratio=0.25, selection=selection, batch_norm=True)
    fuser.eval()
    for norm in fuser.norms:
        norm.weight.data.uniform_(0.5, 2.0)
        norm.running_mean.uniform_(-1.0, 1.0)
    tokens = [torch.randn(2, 6, 16) * (1 + i) for i in range(3)]
    valid = torch.ones(2, 3, 6, dtype=torch.bool)
    normalised = [norm(x.reshape(-1, 16)).view(2, 6, 16) for norm, x in zip(fuser.norms, tokens)]
    gammas = [norm.weight.abs() for norm in fuser.norms]
    importance, other_importance = (gammas, None) if selection == "bn_gamma" else (None, gammas)
    expected = rank_exchange(normalised, fuser.alpha, 0.25, mask=list(valid.unbind(1)), importance=importance)
    out = fuser(tokens, valid)
    for got, want in zip(out.exchanged, expected):
        torch.testing.assert_close(got, want)
    # The two rules pick different channels here, so the exchanged tokens differ between them.
    other = rank_exchange(normalised, fuser.alpha, 0.25, mask=list(valid.unbind(1)), importance=other_importance)
    assert not all(torch.equal(a, b) for a, b in zip(out.exchanged, other))
    assert RankEnhancingTokenFuser(3, dim=16, heads=4).norms is None  # the default has no BatchNorm


@pytest.mark.parametrize("encoder", ["flatten", "conv"])
def test_depth_standardiser_applies_its_frozen_statistics_to_valid_pixels_only(encoder):
    model = R3DModel(small_config(("depth",), depth_encoder=encoder, depth_standardise=True))
    standardiser = model.depth_standardiser
    mean, std = torch.rand(24, 32) * 0.5 + 0.2, torch.rand(24, 32) * 0.1 + 0.01
    standardiser.set_statistics(mean, std)
    depth = make_inputs(2, 3)["depth"]
    depth[0, 0, 0, :4, :4] = 0.0  # invalid readings
    frames = depth.flatten(0, 1)
    out = standardiser(frames)
    valid = frames > 0
    torch.testing.assert_close(out[valid], ((frames - mean) / std)[valid])
    assert (out[~valid] == 0).all() and (~valid).sum() == 16
    # Statistics are buffers: saved with the weights, untouched by training and by train/eval mode.
    state = model.state_dict()
    torch.testing.assert_close(state["encoders.depth.standardise.mean"], mean.unsqueeze(0))
    assert not any("standardise" in name for name, _ in model.named_parameters())
    model.train()
    train_tokens = model.encode_frames({"depth": depth})["depth"]
    model.eval()
    torch.testing.assert_close(model.encode_frames({"depth": depth})["depth"], train_tokens)
    # Without the option there is no standardiser and the state dict is the one of older checkpoints.
    plain = R3DModel(small_config(("depth",), depth_encoder=encoder))
    assert plain.depth_standardiser is None
    assert set(state) - set(plain.state_dict()) == {"encoders.depth.standardise.mean", "encoders.depth.standardise.std"}


def test_window_longer_than_positions_is_refused():
    model = R3DModel(small_config(("skeleton",)))
    with pytest.raises(ValueError, match="max_frames"):
        model({"skeleton": torch.zeros(1, 25, 25, 3)}, torch.ones(1, 25, dtype=torch.bool))


def test_decode_future_cuts_at_none_and_renormalises():
    logits = torch.full((2, 4, K + 1), -10.0)
    logits[0, 0, 2] = logits[0, 1, 4] = logits[0, 2, K] = logits[0, 3, 1] = 10.0
    logits[1, 0, K] = 10.0
    durations = torch.log(torch.tensor([[1.0, 3.0, 5.0, 7.0], [1.0, 1.0, 1.0, 1.0]]))
    decoded = decode_future(logits, durations)
    assert [(c, round(f, 6)) for c, f, _ in decoded[0]] == [(2, 0.25), (4, 0.75)]
    assert decoded[0][0][2] == pytest.approx(1.0, abs=1e-6)
    assert decoded[1] == []


def test_transition_samples_weigh_ten_times_in_the_class_loss():
    torch.manual_seed(0)
    model = R3DModel(small_config(("skeleton",))).eval()
    mask = torch.ones(2, 4, dtype=torch.bool)
    with torch.no_grad():
        out = model({"skeleton": torch.randn(2, 4, 25, 3)}, mask)
    future = torch.tensor([[1, K, -1, -1], [2, K, -1, -1]])
    targets = {"mask": mask, "frame_labels": torch.full((2, 4), 1), "future_classes": future,
               "future_durations": torch.tensor([[1.0, 0, 0, 0]] * 2)}
    ce = torch.nn.functional.cross_entropy(out.action_logits[:, :2].reshape(4, K + 1), future[:, :2].reshape(4),
                                           reduction="none").view(2, 2)
    # sample 0 continues action 1 (weight 1); sample 1 switches 1 -> 2 (weight 10)
    expected = (ce[0].sum() * 1 + ce[1].sum() * 10) / (2 * 1 + 2 * 10)
    assert r3d_losses(out, targets)["classes"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_fusion_package_never_imports_ros_or_does_io():
    root = Path(__file__).resolve().parents[1] / "retf_ros" / "fusion"
    banned = {"rclpy", "rosbags", "cv2", "yaml", "json", "safetensors", "open"}
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in banned for n in names), f"{path.name} imports {names}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                pytest.fail(f"{path.name} opens files")
    code = "import sys, retf_ros.fusion; print('rclpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
