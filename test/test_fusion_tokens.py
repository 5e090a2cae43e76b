"""The tokens entering the exchange: every modality embedding ends in an affine LayerNorm by
default (signed tokens with no dead channel, as in the authors' model); the old ReLU ending stays
selectable, and checkpoints saved before ``token_activation`` existed load as ReLU models with
the outputs they had.

test/data/relu_*.{safetensors,json} were saved, and relu_*.io.safetensors (their inputs and
outputs) computed, by the code of commit 95d7b0b, before token_activation existed (torch 2.13.0,
CPU; the one-off script is quoted in the message of the commit that added them): relu_conv has
the conv RGB and depth encoders and the skeleton MLP, relu_flatten_features the flattened depth
embedding and a precomputed-feature modality.
"""
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from retf_ros.checkpoint import load_checkpoint, save_checkpoint
from retf_ros.fusion import R3DConfig, R3DModel, inactive_channels
from retf_ros.fusion.encoders import TOKEN_ACTIVATIONS
from retf_ros.fusion.token_stats import TokenMoments

DATA = Path(__file__).parent / "data"
OLD_CHECKPOINTS = ("relu_conv", "relu_flatten_features")


def config(**kw) -> R3DConfig:
    base = dict(num_classes=5, modalities=("rgb", "depth", "skeleton", "imu_features"), dim=32,
                image_size=(8, 8), feature_dims={"imu_features": 6}, max_frames=8, num_queries=3, heads=4,
                fusion_heads=4, ffn_mult=2, encoder_layers=1)
    return R3DConfig(**{**base, **kw})


def inputs(b=3, t=8, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"rgb": torch.rand(b, t, 3, 8, 8, generator=g), "depth": torch.rand(b, t, 1, 8, 8, generator=g),
            "skeleton": torch.randn(b, t, 25, 3, generator=g), "imu_features": torch.randn(b, t, 6, generator=g)}


def encoder_endings(model: R3DModel) -> dict[str, torch.nn.Module]:
    return {m: [mod for mod in encoder.modules() if not list(mod.children())][-1]
            for m, encoder in model.encoders.items()}


def test_the_default_token_ending_is_an_affine_layernorm_with_nothing_after_it():
    assert R3DConfig(num_classes=3).token_activation == "layernorm"
    for depth_encoder in ("conv", "flatten"):
        endings = encoder_endings(R3DModel(config(depth_encoder=depth_encoder)))
        assert set(endings) == {"rgb", "depth", "skeleton", "imu_features"}
        for modality, last in endings.items():
            assert isinstance(last, torch.nn.LayerNorm) and last.elementwise_affine, (modality, last)


@pytest.mark.parametrize("depth_encoder", ["conv", "flatten"])
def test_layernorm_tokens_are_signed_and_have_no_inactive_channel(depth_encoder):
    torch.manual_seed(0)
    model = R3DModel(config(depth_encoder=depth_encoder)).eval()
    with torch.no_grad():
        out = model(inputs(), torch.ones(3, 8, dtype=torch.bool))
    for modality, tokens in out.tokens_before.items():
        assert float((tokens < 0).float().mean()) > 0.3, modality
        assert torch.allclose(tokens.mean(dim=-1), torch.zeros(3, 8), atol=1e-5), modality
        assert int(inactive_channels(tokens, torch.ones(3, 8, dtype=torch.bool)).max()) == 0, modality


def test_relu_tokens_remain_selectable_and_are_non_negative():
    torch.manual_seed(0)
    model = R3DModel(config(token_activation="relu")).eval()
    with torch.no_grad():
        out = model(inputs(), torch.ones(3, 8, dtype=torch.bool))
    for modality, last in encoder_endings(model).items():
        assert isinstance(last, torch.nn.ReLU), modality
        assert float(out.tokens_before[modality].min()) >= 0.0, modality


def test_an_unknown_token_activation_is_refused():
    assert TOKEN_ACTIVATIONS == ("layernorm", "relu")
    with pytest.raises(ValueError, match="token_activation must be one of layernorm, relu"):
        config(token_activation="gelu")


def test_a_checkpoint_records_its_token_activation(tmp_path):
    for activation in TOKEN_ACTIVATIONS:
        save_checkpoint(tmp_path / activation, R3DModel(config(token_activation=activation)), {})
        meta = json.loads((tmp_path / f"{activation}.json").read_text())
        assert meta["model_config"]["token_activation"] == activation
        assert load_checkpoint(tmp_path / activation).model.config.token_activation == activation


@pytest.mark.parametrize("name", OLD_CHECKPOINTS)
def test_a_checkpoint_saved_before_token_activation_loads_as_relu_with_identical_outputs(name):
    assert "token_activation" not in json.loads((DATA / f"{name}.json").read_text())["model_config"]
    loaded = load_checkpoint(DATA / name)
    assert loaded.model.config.token_activation == "relu"
    io = load_file(str(DATA / f"{name}.io.safetensors"))
    batch = {k.removeprefix("input."): v for k, v in io.items() if k.startswith("input.")}
    with torch.no_grad():
        out = loaded.model(batch, io["mask"])
    # The tokens are bit-identical; what follows the exchange runs the faster inference paths
    # (test_fusion_reference_outputs), equal within the same float tolerance.
    for field in ("action_logits", "duration_logits", "segmentation_logits", "fused"):
        torch.testing.assert_close(getattr(out, field), io[f"out.{field}"], atol=2e-5, rtol=1e-4, msg=field)
    for modality in loaded.model.config.modalities:
        assert torch.equal(out.tokens_before[modality], io[f"out.tokens_before.{modality}"]), modality
        assert torch.equal(out.tokens_after[modality], io[f"out.tokens_after.{modality}"]), modality


def test_the_train_command_selects_the_token_activation():
    from retf_ros.training.commands import TRAIN_OVERRIDES
    from retf_ros.training.config import load_config

    assert TRAIN_OVERRIDES["token_activation"] == "model.token_activation"
    assert load_config(None, {"model.token_activation": "relu"}).model["token_activation"] == "relu"


def test_token_moments_average_the_valid_tokens_channel_mean_and_sd():
    z = torch.tensor([[[1.0, 3.0], [0.0, 0.0], [9.0, 9.0]], [[-2.0, 2.0], [5.0, 5.0], [7.0, 7.0]]])  # (2, 3, 2)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    moments = TokenMoments()
    moments.add(z[:1], mask[:1])
    moments.add(z[1:], mask[1:])
    summary = moments.summary()
    # valid tokens: (1, 3) mean 2 sd 1; (0, 0) mean 0 sd 0; (-2, 2) mean 0 sd 2
    assert summary["token_mean"] == pytest.approx(2 / 3)
    assert summary["token_mean_sd"] == pytest.approx((8 / 9) ** 0.5)  # means 2, 0, 0: variance 4/3 - 4/9
    assert summary["token_sd"] == pytest.approx(1.0)
    empty = TokenMoments().summary()
    assert all(math.isnan(v) for v in empty.values())
