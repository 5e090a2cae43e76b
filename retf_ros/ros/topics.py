"""The node's input topic names, in one place for the node, the synthetic camera and the launch file.

Names are relative: they follow the node's namespace and any remapping. A compressed stream lives
at ``<image topic>/compressed``, image_transport's naming, so one remapping of the image topic's
base name serves raw and compressed RGB alike.
"""
from __future__ import annotations

INPUT_TOPICS = {"rgb": "rgb/image_raw", "depth": "depth/image_raw", "skeleton": "skeleton"}
COMPRESSED_SUFFIX = "/compressed"


def compressed_topic(image_topic: str) -> str:
    """The CompressedImage topic that belongs to ``image_topic`` (image_transport's naming)."""
    return image_topic + COMPRESSED_SUFFIX
