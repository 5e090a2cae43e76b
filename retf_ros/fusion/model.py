"""R3D: the action-anticipation model around RTF (docs/method.md section 5), FUTR-style.

frames -> per-modality frame encoders (one token per frame and modality) -> RTF exchange +
fusion (one token per frame) -> temporal transformer encoder -> decoder with learned action
queries -> future action classes (+ NONE), durations as fractions of the horizon, and a
per-frame segmentation of the observed window.

Windows are laid out with the valid frames first and padding at the end, so a frame's
positional embedding does not depend on how much padding follows it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from retf_ros.fusion.encoders import (TOKEN_ACTIVATIONS, DepthConvEncoder, DepthFlattenEncoder, FeatureEncoder,
                                      PixelStandardiser, RGBEncoder, SkeletonEncoder, TorchvisionEncoder)
from retf_ros.fusion.fuser import FusionOutput, build_fusion, every_true_on_cpu
from retf_ros.fusion.skeleton import get_layout
from retf_ros.fusion.temporal import decoder_inference, encoder_inference

IMAGE_MODALITIES = ("rgb", "depth")
# What a checkpoint's model_config means when it has no token_activation: it was written before
# the key existed, when every embedding ended in a ReLU.
LEGACY_TOKEN_ACTIVATION = "relu"


@dataclass
class R3DConfig:
    """Everything needed to rebuild the model; stored in checkpoint metadata."""

    num_classes: int
    modalities: tuple[str, ...] = ("rgb", "depth", "skeleton")
    dim: int = 128
    image_size: tuple[int, int] = (48, 64)      # (h, w) the RGB / depth encoders see
    rgb_encoder: str = "conv"                   # "conv" or "torchvision:<arch>" (e.g. torchvision:resnet18)
    rgb_backbone_weights: str | None = None     # safetensors file that initialises the torchvision backbone
    depth_encoder: str = "conv"                 # "conv" or "flatten" (the authors' choice)
    depth_standardise: bool = False             # per-pixel standardisation of depth by training statistics
    skeleton_layout: str = "kinect_v2_25"
    feature_dims: dict[str, int] = field(default_factory=dict)  # precomputed-feature modalities -> F
    token_activation: str = "layernorm"         # embedding ending: "layernorm" (faithful) or "relu" (old table)
    fusion: str = "rtf"                         # rtf | no_exchange | concat | sum | sum_exchange
    exchange_ratio: float = 0.3
    exchange_partner: str = "most_informative"  # or "mean"
    exchange_selection: str = "variance"        # or "bn_gamma" (ablation)
    exchange_batchnorm: bool = False            # per-modality BatchNorm before the exchange (implied by bn_gamma)
    fusion_heads: int = 8
    max_frames: int = 64
    num_queries: int = 8
    encoder_layers: int = 2
    decoder_layers: int = 1
    heads: int = 8
    ffn_mult: int = 4
    dropout: float = 0.1
    modality_dropout: float = 0.0               # training only: drop whole modalities per sample

    def __post_init__(self):
        self.modalities = tuple(self.modalities)
        self.image_size = tuple(self.image_size)
        unknown = [m for m in self.modalities if m not in (*IMAGE_MODALITIES, "skeleton") and m not in self.feature_dims]
        if unknown:
            raise ValueError(f"modalities {unknown} need an entry in feature_dims (precomputed features)")
        if not self.modalities:
            raise ValueError("at least one modality is required")
        if self.token_activation not in TOKEN_ACTIVATIONS:
            raise ValueError(f"token_activation must be one of {', '.join(TOKEN_ACTIVATIONS)}, "
                             f"got {self.token_activation!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "R3DConfig":
        """A checkpoint's model_config; one without token_activation predates it (ReLU tokens)."""
        data = {"token_activation": LEGACY_TOKEN_ACTIVATION, **data}
        known = {f.name for f in fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            raise ValueError(f"unknown model config keys: {extra}")
        return cls(**data)


@dataclass
class R3DOutput:
    action_logits: torch.Tensor        # (B, Q, K+1), index K = NONE (end of the transcript)
    duration_logits: torch.Tensor      # (B, Q) log-durations; see `durations` / `normalised_durations`
    segmentation_logits: torch.Tensor  # (B, T, K) per observed frame
    tokens_before: dict[str, torch.Tensor]  # modality -> (B, T, C) encoder tokens (exchange input)
    tokens_after: dict[str, torch.Tensor]   # modality -> (B, T, C) after the exchange
    fused: torch.Tensor                # (B, T, C) one fused token per frame
    valid: dict[str, torch.Tensor]     # modality -> (B, T) bool: observed (frame valid and present)

    @property
    def durations(self) -> torch.Tensor:
        """(B, Q) fractions of the horizon over all queries (sum 1)."""
        return torch.softmax(self.duration_logits.float(), dim=-1)


def normalised_durations(duration_logits: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """exp(logits), masked to ``slots`` (B, Q) bool, normalised to sum 1 over them -> (B, Q)."""
    logits = duration_logits.float().masked_fill(~slots, float("-inf"))
    return torch.softmax(logits, dim=-1).nan_to_num(0.0)


def decode_future(action_logits: torch.Tensor, duration_logits: torch.Tensor
                  ) -> list[list[tuple[int, float, float]]]:
    """Decode queries into ordered future segments per sample.

    Argmax class per query, cut at the first NONE, durations renormalised over the kept queries.
    Returns, per sample, [(class_id, fraction_of_horizon, confidence), ...] (fractions sum to 1;
    empty when the first query is NONE).
    """
    probs = torch.softmax(action_logits.float(), dim=-1)
    confidence, classes = probs.max(dim=-1)
    none_class = action_logits.shape[-1] - 1
    is_none = classes == none_class
    q = classes.shape[1]
    first_none = torch.where(is_none.any(dim=1), is_none.float().argmax(dim=1), torch.full_like(classes[:, 0], q))
    kept = torch.arange(q, device=classes.device).unsqueeze(0) < first_none.unsqueeze(1)
    fractions = normalised_durations(duration_logits, kept)
    decoded = []
    for b in range(classes.shape[0]):
        n = int(first_none[b])
        decoded.append([(int(classes[b, i]), float(fractions[b, i]), float(confidence[b, i])) for i in range(n)])
    return decoded


class R3DModel(nn.Module):
    """Multi-modal anticipation model. See the module docstring for the data flow.

    Inputs are prepared by retf_ros.fusion.inputs: "rgb" (B, T, 3, h, w), "depth"
    (B, T, 1, h, w), "skeleton" (B, T, J, 3), feature modalities (B, T, F).
    """

    def __init__(self, config: R3DConfig):
        super().__init__()
        self.config = config
        c = config.dim
        self.encoders = nn.ModuleDict({m: self._make_encoder(m) for m in config.modalities})
        fusion_kind = config.fusion if len(config.modalities) > 1 else "no_exchange"
        self.fusion = build_fusion(fusion_kind, len(config.modalities), c, ratio=config.exchange_ratio,
                                   heads=config.fusion_heads, dropout=config.dropout,
                                   partner=config.exchange_partner, selection=config.exchange_selection,
                                   batch_norm=config.exchange_batchnorm)
        self.position = nn.Parameter(torch.randn(config.max_frames, c) * 0.02)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(c, config.heads, config.ffn_mult * c, config.dropout, batch_first=True),
            config.encoder_layers, enable_nested_tensor=False)
        self.queries = nn.Parameter(torch.randn(config.num_queries, c) * 0.02)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(c, config.heads, config.ffn_mult * c, config.dropout, batch_first=True),
            config.decoder_layers)
        self.class_head = nn.Linear(c, config.num_classes + 1)
        self.duration_head = nn.Linear(c, 1)
        self.segmentation_head = nn.Linear(c, config.num_classes)

    def _make_encoder(self, modality: str) -> nn.Module:
        cfg = self.config
        ending = cfg.token_activation
        if modality in cfg.feature_dims:
            return FeatureEncoder(cfg.feature_dims[modality], cfg.dim, token_activation=ending)
        if modality == "rgb":
            if cfg.rgb_encoder.startswith("torchvision:"):
                return TorchvisionEncoder(cfg.rgb_encoder.split(":", 1)[1], cfg.dim, token_activation=ending)
            if cfg.rgb_encoder != "conv":
                raise ValueError(f"rgb_encoder must be 'conv' or 'torchvision:<arch>', got {cfg.rgb_encoder!r}")
            return RGBEncoder(cfg.dim, token_activation=ending)
        if modality == "depth":
            if cfg.depth_encoder == "flatten":
                return DepthFlattenEncoder(cfg.image_size, cfg.dim, standardise=cfg.depth_standardise,
                                           token_activation=ending)
            if cfg.depth_encoder != "conv":
                raise ValueError(f"depth_encoder must be 'conv' or 'flatten', got {cfg.depth_encoder!r}")
            return DepthConvEncoder(cfg.dim, standardise=cfg.depth_standardise, image_size=cfg.image_size,
                                    token_activation=ending)
        return SkeletonEncoder(get_layout(cfg.skeleton_layout).num_joints, cfg.dim, token_activation=ending)

    @property
    def none_class(self) -> int:
        return self.config.num_classes

    @property
    def depth_standardiser(self) -> PixelStandardiser | None:
        """The depth encoder's PixelStandardiser (its statistics are set by the trainer), if any."""
        encoder = self.encoders["depth"] if "depth" in self.encoders else None
        return getattr(encoder, "standardise", None)

    def encode_frames(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-frame tokens: each prepared input (B, T, ...) -> (B, T, C). Modalities the model
        does not use are ignored; frames are encoded independently of each other."""
        tokens = {}
        for modality, encoder in self.encoders.items():
            if modality not in inputs:
                continue
            x = inputs[modality]
            b, t = x.shape[:2]
            tokens[modality] = encoder(x.reshape(b * t, *x.shape[2:])).view(b, t, -1)
        return tokens

    def _validity(self, tokens: dict[str, torch.Tensor], mask: torch.Tensor,
                  present: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """(B, M, T) bool: frame valid and modality observed; applies modality dropout in training."""
        rows = []
        for modality in self.config.modalities:
            row = mask if modality in tokens else torch.zeros_like(mask)
            if present is not None and modality in present:
                row = row & present[modality].bool()
            rows.append(row)
        valid = torch.stack(rows, dim=1)
        p = self.config.modality_dropout
        if self.training and p > 0 and valid.shape[1] > 1:
            keep = torch.rand(valid.shape[:2], device=valid.device) >= p  # (B, M)
            observed = valid.any(dim=-1)
            keep = keep & observed
            none_left = ~keep.any(dim=1)
            if none_left.any():  # never drop every modality: keep one observed modality at random
                pick = torch.multinomial(observed[none_left].float() + 1e-6, 1).squeeze(1)
                keep[none_left] = nn.functional.one_hot(pick, valid.shape[1]).bool()
            valid = valid & keep.unsqueeze(-1)
        return valid

    def forward_tokens(self, tokens: dict[str, torch.Tensor], mask: torch.Tensor,
                       present: dict[str, torch.Tensor] | None = None) -> R3DOutput:
        """tokens: modality -> (B, T, C); mask: (B, T) bool valid frames (padding at the end);
        present: optional modality -> (B, T) bool (sensor delivered this frame)."""
        reference = next(iter(tokens.values()))
        b, t, c = reference.shape
        if t > self.config.max_frames:
            raise ValueError(f"window of {t} frames exceeds the model's max_frames={self.config.max_frames}")
        mask = mask.bool()
        full = [tokens[m] if m in tokens else reference.new_zeros(b, t, c) for m in self.config.modalities]
        valid = self._validity(tokens, mask, present)
        observed = mask & valid.any(dim=1)
        # A sample with nothing observed would make attention rows empty (NaN); give it one key.
        observed[:, 0] |= ~observed.any(dim=1)
        # Every frame observed (the streaming case): no key padding mask at all, which lets the
        # attention take the fused SDPA kernels instead of the masked softmax. Asked only of CPU
        # tensors: on a GPU the answer would cost a host sync per forward, and SDPA's masked
        # kernels there are fused too.
        padding = None if every_true_on_cpu(observed) else ~observed
        fusion: FusionOutput = self.fusion(full, valid)

        x = fusion.fused + self.position[:t]
        queries = self.queries.unsqueeze(0).expand(b, -1, -1)
        if self.training:  # torch's layers: dropout
            memory = self.encoder(x, src_key_padding_mask=padding)
            decoded = self.decoder(queries, memory, memory_key_padding_mask=padding)
        else:
            memory = encoder_inference(self.encoder, x, padding)
            decoded = decoder_inference(self.decoder, queries, memory, padding)
        names = self.config.modalities
        return R3DOutput(
            action_logits=self.class_head(decoded),
            duration_logits=self.duration_head(decoded).squeeze(-1),
            segmentation_logits=self.segmentation_head(memory),
            tokens_before={m: full[i] for i, m in enumerate(names)},
            tokens_after={m: fusion.exchanged[i] for i, m in enumerate(names)},
            fused=fusion.fused,
            valid={m: valid[:, i] for i, m in enumerate(names)},
        )

    def forward(self, inputs: dict[str, torch.Tensor], mask: torch.Tensor,
                present: dict[str, torch.Tensor] | None = None) -> R3DOutput:
        return self.forward_tokens(self.encode_frames(inputs), mask, present)
