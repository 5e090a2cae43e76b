"""The cues survive the model's preprocessing: a linear probe on ONE prepared frame (24x32 RGB
and depth, normalised skeleton, exactly what the frame encoders receive) reads each branch's cue
from the modality that carries it, and not from the others, whether the clips are rendered at
the default 160x120 or at the 64x48 of the ablation benchmark (config/ablate_cycles.yaml). So a
model that fails to anticipate a branch fails to learn the cue, not because the generator hid
it (docs/training.md)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from retf_ros.data.synthetic import grammar
from retf_ros.data.synthetic.body import LAYOUT_NAME
from retf_ros.data.synthetic.generate import SynthConfig, generate_sequence
from retf_ros.fusion.inputs import prepare_depth, prepare_rgb, prepare_skeleton

SEQUENCES = 240      # 180 to fit the probe, 60 to test it
TRAIN = 180
FRAMES = (3, 9, 15)  # idle frames of the first cycle (15 fps): every cue is shown


@pytest.fixture(scope="module", params=[(160, 120), (64, 48)], ids=lambda size: f"{size[0]}x{size[1]}")
def probe_data(request):
    """{modality: (N, F) float32}, {branch: (N,) float32 outcome}, rows = sequences x FRAMES."""
    width, height = request.param
    config = SynthConfig(width=width, height=height)
    inputs = {"rgb": [], "depth": [], "skeleton": []}
    outcomes = {b: [] for b in grammar.BRANCHES}
    for index in range(SEQUENCES):
        seq = generate_sequence(seed=31, index=index, config=config, duration_s=1.2)
        clip, cycle = seq.clip, seq.plan.cycles[0]
        frames = list(FRAMES)
        inputs["rgb"].append(prepare_rgb(clip.rgb[frames], (24, 32)).flatten(1))
        inputs["depth"].append(prepare_depth(clip.depth[frames], (24, 32)).flatten(1))
        inputs["skeleton"].append(torch.nan_to_num(prepare_skeleton(clip.skeleton[frames], LAYOUT_NAME)).flatten(1))
        for b in grammar.BRANCHES:
            outcomes[b] += [float(cycle.outcome(b))] * len(frames)
    return ({m: torch.cat(v).float() for m, v in inputs.items()},
            {b: torch.tensor(v) for b, v in outcomes.items()})


def _probe_test_accuracy(x: torch.Tensor, y: torch.Tensor) -> float:
    """Fit a ridge-penalised logistic regression on the first TRAIN sequences, return the
    accuracy on the others."""
    torch.manual_seed(0)
    split = TRAIN * len(FRAMES)
    mean, std = x[:split].mean(0), x[:split].std(0) + 1e-3
    x = (x - mean) / std
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.01)
    for _ in range(300):
        opt.zero_grad()
        logits = x[:split] @ w + b
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[:split]) + 1e-2 * w.square().sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(((x[split:] @ w + b > 0).float() == y[split:]).float().mean())


@pytest.mark.parametrize("branch", grammar.BRANCHES)
def test_each_cue_is_read_from_its_modality_and_from_no_other(probe_data, branch):
    inputs, outcomes = probe_data
    y = outcomes[branch]
    assert 0.25 < float(y[:TRAIN * len(FRAMES)].mean()) < 0.75  # both outcomes are in the fit
    carrier = grammar.CUE_MODALITY[branch]
    accuracy = {m: _probe_test_accuracy(x, y) for m, x in inputs.items()}
    assert accuracy[carrier] >= 0.75, accuracy
    for other in set(inputs) - {carrier}:
        assert accuracy[other] <= 0.7, (other, accuracy)
