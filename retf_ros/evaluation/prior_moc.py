"""The model-free prior (retf_ros.training.prior) scored like a model: MoC over a split's clips.

The prior observes the ground-truth labels of each clip's alpha x L prefix and predicts the rest;
its frames are scored by ``moc.score_future``, the loop that scores a model's frames.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from retf_ros.evaluation.moc import ALPHAS, HORIZONS, MoCAccumulator, longest_future, score_future
from retf_ros.training import windows
from retf_ros.training.prior import TransitionPrior, clip_labels, fit_prior


def evaluate_prior(prior: TransitionPrior, label_sequences: Iterable[np.ndarray], alphas=ALPHAS,
                   horizons=HORIZONS) -> MoCAccumulator:
    """MoC of the prior over clips given as (N,) label sequences: observe the ground-truth labels
    of the alpha x L prefix, predict, score like a model (``moc.score_future``)."""
    accumulator = MoCAccumulator(prior.num_classes, alphas, horizons)
    for labels in label_sequences:
        n = len(labels)
        for alpha in alphas:
            observed = windows.observed_length(n, alpha)
            score_future(accumulator, alpha, labels, prior.predict(labels[:observed], longest_future(n, horizons)))
    return accumulator


def prior_report(store, split: str | None, part: str, fps: float) -> dict:
    """{"moc": table, "fps", "train_clips"}: the prior fitted on ``split``'s training clips,
    scored on its ``part`` clips at ``fps``."""
    prior = fit_prior(store, split, fps)
    accumulator = evaluate_prior(prior, (clip_labels(store, c, fps) for c in store.clip_ids(split, part)))
    return {"moc": accumulator.table(), "fps": float(fps), "train_clips": len(store.clip_ids(split, "train"))}
