"""Data layer: the clip store format, dataset importers, the synthetic generator (docs/data.md)."""
from retf_ros.data.clipstore import Clip, ClipStore, ClipStoreWriter, data_fingerprint, write_clip

__all__ = ["Clip", "ClipStore", "ClipStoreWriter", "data_fingerprint", "write_clip"]
