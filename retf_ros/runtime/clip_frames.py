"""A clip store's clip as the frame sets the node would deliver, for everything that streams
stored clips through the runtime's predictor (the streaming evaluation, the effective-rank
calibration). A clip is anything with the fields of ``retf_ros.data.Clip`` (``num_frames``,
``stamps``, ``rgb``, ``depth``, ``skeleton``, ``clip_id``): the runtime does not import the data layer.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch

from retf_ros.errors import DataFormatError
from retf_ros.fusion.skeleton import convert_layout, get_layout
from retf_ros.runtime.frames import FrameSet


def clip_frames(clip, modalities: Sequence[str], convert_skeleton=None) -> Iterable[FrameSet]:
    """The clip's frames as the node would deliver them (depth stays uint16 mm, which the shared
    preprocessing reads exactly like float metres). ``convert_skeleton``: optional (J, 3) ->
    (J', 3) joint-layout conversion."""
    for t in range(clip.num_frames):
        skeleton = clip.skeleton[t] if clip.skeleton is not None and "skeleton" in modalities else None
        if skeleton is not None and convert_skeleton is not None:
            skeleton = convert_skeleton(skeleton)
        yield FrameSet(stamp=float(clip.stamps[t]),
                       rgb=clip.rgb[t] if clip.rgb is not None and "rgb" in modalities else None,
                       depth=clip.depth[t] if clip.depth is not None and "depth" in modalities else None,
                       skeleton=skeleton, frame_id=clip.clip_id)


def skeleton_converter(store_layout: str | None, model_layout: str):
    """(J, 3) numpy conversion from the store's joint layout to the model's, or None if equal."""
    if not store_layout or store_layout == model_layout:
        return None
    try:
        source, target = get_layout(store_layout), get_layout(model_layout)
    except ValueError as exc:
        raise DataFormatError(str(exc)) from None
    return lambda joints: convert_layout(torch.from_numpy(np.asarray(joints, np.float32)), source, target).numpy()
