"""Pure-torch core: effective rank, the RTF exchange and fuser, frame encoders, the R3D model.
No I/O and no ROS here. Allowed imports: torch, torchvision, numpy; no other retf_ros package."""
from retf_ros.fusion.erank import (effective_rank, effective_rank_masked, inactive_channels, mutual_gain,
                                   rank_gain)
from retf_ros.fusion.exchange import rank_exchange
from retf_ros.fusion.fuser import FUSION_KINDS, RankEnhancingTokenFuser, build_fusion
from retf_ros.fusion.losses import r3d_losses
from retf_ros.fusion.model import R3DConfig, R3DModel, R3DOutput, decode_future, normalised_durations

__all__ = [
    "effective_rank", "effective_rank_masked", "inactive_channels", "mutual_gain", "rank_gain",
    "rank_exchange", "RankEnhancingTokenFuser", "build_fusion", "FUSION_KINDS", "R3DConfig", "R3DModel",
    "R3DOutput", "decode_future", "normalised_durations", "r3d_losses",
]
