"""The fast paths of issue 20 equal the general computation they replace: the two-modality
shortcuts of the cross-modal attention and of the exchange, the SDPA inference forward of
the temporal transformer (padded and unpadded), and the oneDNN linear layers on the CPU; and
none of them reads a device value back to the host. test_fusion_reference_outputs.py checks the
whole forward against outputs frozen before these paths existed."""
import itertools

import pytest
import torch
from torch.profiler import profile

from retf_ros.bench.model import issue_config
from retf_ros.fusion import R3DConfig, R3DModel, cpu_linear, rank_exchange
from retf_ros.fusion.fuser import CrossModalBlock
from retf_ros.fusion.temporal import decoder_inference, encoder_inference

PRESENCE = [list(p) for p in itertools.product([True, False], repeat=2)]  # every (token 0, token 1) pattern


def _block_and_tokens(seed=0):
    torch.manual_seed(seed)
    block = CrossModalBlock(32, heads=4).eval()
    n = 4 * len(PRESENCE)
    h = torch.randn(n, 2, 32)
    present = torch.tensor(PRESENCE * 4)
    return block, h, present


def test_two_modality_attention_is_the_other_tokens_value_as_the_general_attention_computes_it():
    block, h, present = _block_and_tokens()
    with torch.no_grad():
        general, shortcut = block._attend(h, present), block._attend_to_the_other(h, present)
    torch.testing.assert_close(shortcut, general, atol=1e-6, rtol=1e-6)
    assert (shortcut[~present.flip(1)] == 0).all()  # the other token absent: no attention update
    assert (shortcut[present.flip(1)] != 0).any()


@pytest.mark.parametrize("modalities", [2, 3])
def test_the_block_without_a_presence_mask_equals_the_block_with_every_token_present(modalities):
    torch.manual_seed(modalities)
    block = CrossModalBlock(32, heads=4).eval()
    x = torch.randn(10, modalities, 32)
    with torch.no_grad():
        unmasked, masked = block(x, None), block(x, torch.ones(10, modalities, dtype=torch.bool))
    torch.testing.assert_close(unmasked, masked, atol=0, rtol=0)


def test_two_modality_attention_shortcut_under_bf16_autocast():
    block, h, present = _block_and_tokens(1)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        general, shortcut = block._attend(h, present), block._attend_to_the_other(h, present)
    assert shortcut.dtype == general.dtype
    torch.testing.assert_close(shortcut.float(), general.float(), atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("partner", ["most_informative", "mean"])
def test_two_modality_exchange_equals_the_general_rule_with_a_third_modality_that_cannot_donate(partner):
    """With a third modality that has < 2 valid frames (it neither donates nor receives), the
    general partner rules (gather / mean over donors) must give modalities 0 and 1 exactly what
    the two-modality path gives them."""
    g = torch.Generator().manual_seed(3)
    b, t, c = 3, 9, 16
    tokens = [torch.relu(torch.randn(b, t, c, generator=g)) for _ in range(3)]
    valid = torch.rand(b, 3, t, generator=g) > 0.2
    valid[:, 2] = False
    valid[:, 2, 0] = True  # one valid frame: present, but inactive in the exchange
    alpha = torch.rand(c, generator=g)
    general = rank_exchange(tokens, alpha, 0.4, mask=list(valid.unbind(1)), partner=partner)
    pair = rank_exchange(tokens[:2], alpha, 0.4, mask=list(valid[:, :2].unbind(1)), partner=partner)
    for got, want, original in zip(pair, general[:2], tokens[:2]):
        torch.testing.assert_close(got, want, atol=0, rtol=0)
        assert not torch.equal(got, original)


def _temporal_model():
    torch.manual_seed(0)
    return R3DModel(R3DConfig(num_classes=5, modalities=("rgb", "depth"), dim=32, heads=4, fusion_heads=4,
                              max_frames=20)).eval()


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
def test_inference_encoder_and_decoder_equal_torchs_layers(padded):
    model = _temporal_model()
    x = torch.randn(2, 20, 32)
    padding = torch.zeros(2, 20, dtype=torch.bool)
    if padded:
        padding[1, 13:] = True
        padding[0, 5] = True   # an unobserved frame inside the window
    queries = model.queries.unsqueeze(0).expand(2, -1, -1)
    with torch.no_grad():
        memory = model.encoder(x, src_key_padding_mask=padding if padded else None)
        decoded = model.decoder(queries, memory, memory_key_padding_mask=padding if padded else None)
        fast_memory = encoder_inference(model.encoder, x, padding if padded else None)
        fast_decoded = decoder_inference(model.decoder, queries, fast_memory, padding if padded else None)
    torch.testing.assert_close(fast_memory[~padding], memory[~padding], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast_decoded, decoded, atol=1e-5, rtol=1e-5)


def _aten_ops(model, tokens, mask) -> set[str]:
    with torch.no_grad(), profile() as prof:
        model.forward_tokens(tokens, mask)
    return {event.key for event in prof.key_averages()}


def test_a_fully_observed_window_takes_no_masked_attention_path():
    model = _temporal_model()
    tokens = {m: torch.rand(1, 12, 32) for m in ("rgb", "depth")}
    full = _aten_ops(model, tokens, torch.ones(1, 12, dtype=torch.bool))
    assert "aten::_masked_softmax" not in full
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in full
    padded_mask = torch.ones(1, 12, dtype=torch.bool)
    padded_mask[0, 9:] = False
    with torch.no_grad():
        out = model.forward_tokens(tokens, padded_mask)
        trimmed = model.forward_tokens({m: x[:, :9] for m, x in tokens.items()}, padded_mask[:, :9])
    # the padded window masks its padding: the valid frames see what the trimmed window sees
    torch.testing.assert_close(out.action_logits, trimmed.action_logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("steps", [1, 2, 3, 10, 12, 64])
@pytest.mark.parametrize("partner", ["most_informative", "mean"])
@pytest.mark.parametrize("given_importance", [False, True], ids=["variance", "given_importance"])
def test_exchange_of_a_fully_valid_pair_equals_the_masked_computation_bit_for_bit(steps, partner, given_importance):
    g = torch.Generator().manual_seed(steps)
    b, c = 2, 24
    tokens = [torch.relu(torch.randn(b, steps, c, generator=g)) * 3 for _ in range(2)]
    alpha = torch.rand(c, generator=g)
    importance = [torch.randn(c, generator=g) for _ in range(2)] if given_importance else None
    all_true = [torch.ones(b, steps, dtype=torch.bool) for _ in range(2)]
    masked = rank_exchange(tokens, alpha, 0.3, mask=all_true, partner=partner, importance=importance)
    unmasked = rank_exchange(tokens, alpha, 0.3, mask=None, partner=partner, importance=importance)
    for got, want in zip(unmasked, masked):
        assert torch.equal(got, want)
    assert (steps < 2) == all(torch.equal(got, x) for got, x in zip(unmasked, tokens))


onednn = pytest.mark.skipif(not cpu_linear._ONEDNN, reason="this torch build has no oneDNN linear kernel")


@onednn
@pytest.mark.parametrize("rows, features, out, activation", [
    (256, 19200, 128, None),   # the flattened 160x120 depth map of a T=256 window
    (8, 2048, 128, None),      # 2048-d RGB features, the fewest rows that take oneDNN
    (512, 128, 512, "gelu"),   # the fuser's MLP expansion (B*T*M tokens)
    (256, 128, 512, "relu"),   # the temporal encoder's feed-forward
    (256, 512, 128, None),
])
def test_cpu_linear_takes_onednn_and_equals_the_plain_layer(rows, features, out, activation):
    torch.manual_seed(0)
    layer = torch.nn.Linear(features, out)
    x = torch.randn(2, rows // 2, features)
    plain = {None: lambda y: y, "relu": torch.relu, "gelu": torch.nn.functional.gelu}[activation](layer(x))
    with torch.no_grad():
        assert cpu_linear.takes_onednn(x, layer)
        fast = cpu_linear.linear(x, layer, activation)
    assert fast.shape == plain.shape
    torch.testing.assert_close(fast, plain.detach(), atol=2e-5, rtol=1e-5)


@onednn
def test_cpu_linear_keeps_the_plain_path_where_onednn_would_differ_or_be_slower():
    layer = torch.nn.Linear(2048, 128)
    x = torch.randn(64, 2048)
    assert not cpu_linear.takes_onednn(x, layer)                 # the weight needs a gradient
    out = cpu_linear.linear(x, layer, "relu")
    out.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    with torch.no_grad():
        assert cpu_linear.takes_onednn(x, layer)
        assert not cpu_linear.takes_onednn(x[:4], layer)         # a streaming frame or two: MKL is faster
        assert not cpu_linear.takes_onednn(x.double(), layer.double())
        assert not cpu_linear.takes_onednn(torch.randn(64, 128), torch.nn.Linear(128, 128))  # narrow, < 128 rows
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not cpu_linear.takes_onednn(x, layer)         # autocast decides the dtype there
    with pytest.raises(ValueError, match="activation"):
        cpu_linear.linear(x, layer, "tanh")


@onednn
def test_cpu_linear_never_uses_a_weight_layout_older_than_the_weight():
    """The wide layers keep their weight in oneDNN's layout between calls; any change of the
    weight (optimizer step, load_state_dict, a replaced .data) must be seen by the next call."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(2048, 16)
    x = torch.randn(32, 2048)
    with torch.no_grad():
        cpu_linear.linear(x, layer)
        changes = [lambda: layer.weight.mul_(-2.0),
                   lambda: layer.load_state_dict({"weight": torch.randn(16, 2048), "bias": torch.zeros(16)}),
                   lambda: setattr(layer.weight, "data", torch.randn(16, 2048))]
        for change in changes:
            before = cpu_linear.linear(x, layer)
            change()
            after = cpu_linear.linear(x, layer)
            assert not torch.allclose(after, before)
            torch.testing.assert_close(after, layer(x), atol=1e-4, rtol=1e-5)


@onednn
@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
def test_a_long_window_on_onednn_equals_the_forward_on_torchs_linear(padded, monkeypatch):
    """T = 160 at the issue's configuration: the depth / feature embeddings, the fuser's MLP and
    the temporal feed-forward all take oneDNN; outputs equal the forward without it."""
    torch.manual_seed(0)
    steps = 160
    model = R3DModel(issue_config(steps)).eval()
    inputs = {"rgb": torch.randn(2, steps, 2048), "depth": torch.rand(2, steps, 1, 120, 160)}
    mask = torch.ones(2, steps, dtype=torch.bool)
    if padded:
        mask[1, 100:] = False
    with torch.no_grad():
        with profile() as prof:
            fast = model(inputs, mask)
        assert sum(e.count for e in prof.key_averages() if e.key == "mkldnn::_linear_pointwise") == 2 + 2 + 2 * 2
        monkeypatch.setattr(cpu_linear, "_ONEDNN", False)
        plain = model(inputs, mask)
    for name in ("action_logits", "duration_logits", "segmentation_logits", "fused"):
        torch.testing.assert_close(getattr(fast, name), getattr(plain, name), atol=5e-5, rtol=1e-4)
    for m in model.config.modalities:
        torch.testing.assert_close(fast.tokens_before[m], plain.tokens_before[m], atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("config", [issue_config(24), R3DConfig(num_classes=5, dim=32, heads=4, fusion_heads=4,
                                                                max_frames=24)], ids=["issue_rgb_depth", "rtf3"])
@pytest.mark.parametrize("with_presence", [False, True], ids=["mask_only", "presence_given"])
def test_an_inference_forward_reads_no_value_back_from_the_device(config, with_presence):
    """On a GPU a value read back to the host (bool(), .item(), .tolist()) waits for every queued
    kernel. The meta device refuses such reads, so a forward that completes there has none."""
    model = R3DModel(config).eval().to("meta")
    h, w = config.image_size
    shapes = {"rgb": (3, h, w), "depth": (1, h, w), "skeleton": (25, 3)}
    inputs = {m: torch.empty(2, 24, *(config.feature_dims[m],) if m in config.feature_dims else shapes[m],
                             device="meta") for m in config.modalities}
    mask = torch.ones(2, 24, dtype=torch.bool, device="meta")
    with pytest.raises(RuntimeError, match="meta"):
        bool(mask.all())
    present = {"depth": torch.ones(2, 24, dtype=torch.bool, device="meta")} if with_presence else None
    with torch.no_grad():
        out = model(inputs, mask, present)
    assert out.action_logits.shape == (2, config.num_queries, config.num_classes + 1)
    assert out.fused.device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the GPU check runs it)")
@pytest.mark.parametrize("precision", [None, torch.float16, torch.bfloat16], ids=["fp32", "fp16", "bf16"])
def test_a_cuda_forward_makes_no_host_sync(precision):
    """The same property as above, asked of CUDA itself: with sync debug mode "error" any
    device -> host synchronisation inside the forward raises."""
    torch.manual_seed(0)
    model = R3DModel(issue_config(64)).cuda().eval()
    inputs = {"rgb": torch.randn(1, 64, 2048, device="cuda"), "depth": torch.rand(1, 64, 1, 120, 160, device="cuda")}
    mask = torch.ones(1, 64, dtype=torch.bool, device="cuda")
    autocast = torch.autocast("cuda", dtype=precision, enabled=precision is not None)
    with torch.no_grad(), autocast:
        model(inputs, mask)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            out = model(inputs, mask)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(out.action_logits.float()).all()
