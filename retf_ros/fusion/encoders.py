"""Per-frame encoders: one frame of one modality -> one C-dimensional token.

They run once per frame (the streaming runtime caches their output), so they see no time axis:
every encoder maps (N, ...) -> (N, C), and the model folds (B, T) into N. GroupNorm rather than
BatchNorm keeps a frame's token independent of whatever else is in the batch (padding, other
samples), which is what makes streaming equal batch inference.

Every encoder ends in its token ending (``token_ending``): by default an affine per-token
LayerNorm with no activation after it, as in the authors' model, whose tokens entering the
exchange are signed (about half of the values negative, per-token mean ~0, sd ~1) and have no
channel that is constant over frames. The old ending, a ReLU, left 46-84 of 128 channels dead
on every frame, and RTF's lowest-variance rule then selects exactly those dead units; it stays
available (``token_activation="relu"``) only to reproduce and load models trained with it.
"""
from __future__ import annotations

import torch
from torch import nn

from retf_ros.fusion.cpu_linear import linear

TOKEN_ACTIVATIONS = ("layernorm", "relu")


def token_ending(dim: int, activation: str) -> nn.Module:
    """The last layer of a modality embedding, (N, C) -> (N, C): an affine LayerNorm over the C
    channels ("layernorm", the default) or the old ReLU ("relu"). It replaces the ReLU at the same
    position, so a "relu" model has exactly the parameters (and state-dict keys) of before."""
    if activation == "layernorm":
        return nn.LayerNorm(dim)
    if activation == "relu":
        return nn.ReLU(inplace=True)
    raise ValueError(f"token_activation must be one of {', '.join(TOKEN_ACTIVATIONS)}, got {activation!r}")


def _conv_stage(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=2, padding=kernel // 2, bias=False),
                         nn.GroupNorm(8, cout), nn.ReLU(inplace=True))


class ConvFrameEncoder(nn.Module):
    """Small conv net trained end to end (the default for RGB and depth: no pretrained weights
    can be downloaded where this runs). (N, Ch, h, w) -> (N, C). Keeps a 2 x 2 spatial grid before
    the projection so where something is in the image survives the pooling.
    """

    def __init__(self, in_channels: int, dim: int = 128, widths: tuple[int, ...] = (32, 64, 96, 128),
                 token_activation: str = "layernorm"):
        super().__init__()
        stages, cin = [], in_channels
        for i, width in enumerate(widths):
            stages.append(_conv_stage(cin, width, 5 if i == 0 else 3))
            cin = width
        self.features = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(2))
        self.proj = nn.Sequential(nn.Flatten(), nn.Linear(cin * 4, dim), token_ending(dim, token_activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.features(x))


class RGBEncoder(ConvFrameEncoder):
    """RGB in [0, 1] (N, 3, h, w) -> (N, C); centres the intensities first."""

    def __init__(self, dim: int = 128, token_activation: str = "layernorm"):
        super().__init__(3, dim, token_activation=token_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward((x - 0.45) / 0.25)


class PixelStandardiser(nn.Module):
    """Depth (N, 1, h, w) -> per pixel (x - mean) / std over valid readings, invalid pixels 0.

    A depth map is dominated by the static scene (every pixel 0.3-0.9 in metres / 5), so a small
    object at a telling distance moves its few pixels by less than the scene varies between
    cameras. Standardising each pixel by statistics of the training frames makes such a change
    as large as any other. The statistics are buffers fixed before training (saved in the
    checkpoint), so a frame is transformed identically in training, batch and stream inference;
    until ``set_statistics`` is called (mean 0, std 1) only invalid pixels change.
    """

    def __init__(self, image_size: tuple[int, int]):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, *image_size))
        self.register_buffer("std", torch.ones(1, *image_size))

    @torch.no_grad()
    def set_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """mean, std: (h, w) or (1, h, w) in the input's units; std must be > 0."""
        self.mean.copy_(mean.reshape(self.mean.shape))
        self.std.copy_(std.reshape(self.std.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, (x - self.mean) / self.std, torch.zeros_like(x))


class DepthConvEncoder(ConvFrameEncoder):
    """Depth (N, 1, h, w) in metres / 5 (0 = invalid) -> (N, C); a validity channel is added so
    the net can tell "far" from "no reading". ``standardise`` puts a PixelStandardiser for
    ``image_size`` (h, w) in front."""

    def __init__(self, dim: int = 128, standardise: bool = False, image_size: tuple[int, int] | None = None,
                 token_activation: str = "layernorm"):
        super().__init__(2, dim, token_activation=token_activation)
        if standardise and image_size is None:
            raise ValueError("a standardised depth encoder needs the image size")
        self.standardise = PixelStandardiser(image_size) if standardise else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        valid = (x > 0).to(x.dtype)
        if self.standardise is not None:
            x = self.standardise(x)
        return super().forward(torch.cat([x, valid], dim=1))


class DepthFlattenEncoder(nn.Module):
    """The authors' depth embedding: flatten a low-resolution depth map -> Linear -> LayerNorm
    (-> ReLU with the old ``token_activation="relu"``, which followed the LayerNorm here).
    ``standardise`` puts a PixelStandardiser in front."""

    def __init__(self, image_size: tuple[int, int], dim: int = 128, standardise: bool = False,
                 token_activation: str = "layernorm"):
        super().__init__()
        self.standardise = PixelStandardiser(image_size) if standardise else None
        layers = [nn.Flatten(), nn.Linear(image_size[0] * image_size[1], dim), token_ending(dim, "layernorm")]
        if token_activation != "layernorm":
            layers.append(token_ending(dim, token_activation))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x if self.standardise is None else self.standardise(x)
        flatten, projection, *ending = self.net
        # The projection (h*w -> C, e.g. 19200 -> 128) is most of a window's forward: cpu_linear
        # runs it on the faster CPU kernel where one is (the layers stay those of self.net).
        tokens = linear(flatten(x), projection)
        for layer in ending:
            tokens = layer(tokens)
        return tokens


class SkeletonEncoder(nn.Module):
    """Normalised joints (N, J, 3) -> (N, C) with a two-layer MLP."""

    def __init__(self, num_joints: int, dim: int = 128, hidden: int = 256, token_activation: str = "layernorm"):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(num_joints * 3, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, dim), token_ending(dim, token_activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FeatureEncoder(nn.Module):
    """Precomputed per-frame features (N, F) (the FUTR/R3D feature format) -> Linear -> token ending."""

    def __init__(self, feature_dim: int, dim: int = 128, token_activation: str = "layernorm"):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(feature_dim, dim), token_ending(dim, token_activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projection, ending = self.net
        return ending(linear(x.float(), projection))  # cpu_linear: the faster CPU kernel where there is one


class TorchvisionEncoder(nn.Module):
    """An ImageNet backbone from torchvision (when installed), frozen, as the authors used frozen
    features. Weights are never downloaded: built empty here, filled from a user-supplied
    safetensors file by ``retf_ros.checkpoint.load_backbone_weights`` before training (a trained
    checkpoint then carries them). The classifier is replaced by a projection to C.
    """

    def __init__(self, arch: str, dim: int = 128, token_activation: str = "layernorm"):
        super().__init__()
        try:
            import torchvision
        except ImportError as exc:
            raise ImportError("the torchvision RGB encoder needs torchvision installed") from exc
        backbone = getattr(torchvision.models, arch)(weights=None)
        feature_dim = backbone.fc.in_features
        backbone.fc = nn.Identity()
        for p in backbone.parameters():
            p.requires_grad_(False)
        self.backbone = backbone.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        self.proj = nn.Sequential(nn.Linear(feature_dim, dim), token_ending(dim, token_activation))

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # frozen: BatchNorm statistics must not drift
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            feats = self.backbone((x - self.mean) / self.std)
        return self.proj(feats)
