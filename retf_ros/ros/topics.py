"""The nodes' input topic names, in one place for the nodes, the synthetic camera and the launch file.

Names are relative: they follow the node's namespace and any remapping. A compressed stream lives
at ``<image topic>/compressed``, image_transport's naming, so one remapping of the image topic's
base name serves raw and compressed RGB alike.
"""
from __future__ import annotations

INPUT_TOPICS = {"rgb": "rgb/image_raw", "depth": "depth/image_raw", "skeleton": "skeleton"}
COMPRESSED_SUFFIX = "/compressed"
CAMERA_INFO_TOPIC = "rgb/camera_info"  # pose_node's CameraInfo input (the synthetic camera publishes it)


def compressed_topic(image_topic: str) -> str:
    """The CompressedImage topic that belongs to ``image_topic`` (image_transport's naming)."""
    return image_topic + COMPRESSED_SUFFIX
