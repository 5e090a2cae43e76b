"""How a checkpoint's anticipated future frames are formed for the MoC protocol: the network
alone, or the network combined with the transition prior (prior.py) fitted on its training
split. The trainer scores every mode on the validation clips and keeps the best in the
checkpoint metadata (``anticipation``); `retf eval` applies it. The node is not affected: it
streams the network's own transcript within its horizon.

Modes (numpy only, no torch):

- ``network``: the decoded transcript (stream checkpoints hold its last action beyond the
  horizon, evaluate.predicted_frames).
- ``network_then_prior``: the network's transcript over its own horizon, then the prior's
  rollout continuing its last anticipated action (stream checkpoints; a protocol checkpoint's
  transcript already covers the whole scored future, so this equals ``network``).
- ``recognised_prior``: the prior's rollout from the action the network RECOGNISES in the
  newest observed frames (its per-frame segmentation head) and how long that action has
  lasted in the observed window: counting, driven by what the network sees.
"""
from __future__ import annotations

import numpy as np

from retf_ros.training import windows
from retf_ros.training.prior import TransitionPrior

MODES = ("network", "network_then_prior", "recognised_prior")


def recognised_current(frame_classes: np.ndarray, idx: np.ndarray, observed: int) -> tuple[int, int]:
    """(action, elapsed frames) of the last recognised segment of an observation window.

    frame_classes: (W,) argmax of the segmentation per window slot; idx: (W,) the clip frame of
    each slot (PAD = -1); observed: frames of the clip observed. The segment starts at the
    first slot of the final run of equal classes; when it fills the whole window, elapsed is
    the window's span (a lower bound).
    """
    valid = np.flatnonzero(idx >= 0)
    classes = np.asarray(frame_classes)[valid]
    start = len(classes) - 1
    while start > 0 and classes[start - 1] == classes[-1]:
        start -= 1
    return int(classes[-1]), int(observed - idx[valid[start]])


def combined_prediction(mode: str, network: np.ndarray, span: int, prior: TransitionPrior | None,
                        recognised: tuple[int, int], length: int, none_class: int) -> np.ndarray:
    """(length,) future class ids of one clip under ``mode``.

    network: (length,) the network's frames (evaluate.predicted_frames); span: how many of them
    the network actually anticipated (its horizon; the rest repeats its last action);
    recognised: recognised_current's (action, elapsed).
    """
    if mode == "network" or prior is None:
        return network
    if mode == "recognised_prior":
        action, elapsed = recognised
        return prior.rollout(action, elapsed, length)
    if mode != "network_then_prior":
        raise ValueError(f"unknown anticipation mode {mode!r} (known: {', '.join(MODES)})")
    if span >= length or network[span - 1] == none_class:
        return network
    last, run = windows.segments(network[:span])[-1]
    if run == span and last == recognised[0]:
        run += recognised[1]  # the action seen now fills the whole horizon: it began before
    return np.concatenate([network[:span], prior.rollout(last, run, length - span)])
