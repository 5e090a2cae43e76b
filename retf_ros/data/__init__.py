"""Data layer: the clip store format, dataset importers, the synthetic generator (docs/data.md).

Allowed imports: ``retf_ros.fusion`` (skeleton layouts), ``retf_ros.pose`` (camera intrinsics for
PCD frames), ``retf_ros.errors``; ``commands`` (the `retf data` / `retf synth` verbs, CLI layer)
also ``retf_ros.bags`` for `retf data import bag`. Never rclpy."""
from retf_ros.data.clipstore import Clip, ClipStore, ClipStoreWriter, data_fingerprint, write_clip

__all__ = ["Clip", "ClipStore", "ClipStoreWriter", "data_fingerprint", "write_clip"]
