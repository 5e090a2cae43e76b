"""Training losses of R3D (docs/method.md section 5), each averaged over VALID entries only."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from retf_ros.fusion.model import R3DOutput, normalised_durations

TRANSITION_WEIGHT = 10.0  # weight of a sample whose first future action differs from the last observed


def last_observed_label(frame_labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T) labels (-1 = ignore), (B, T) bool -> (B,) label of the last valid labelled frame (-1 if none)."""
    labelled = mask & (frame_labels >= 0)
    t = frame_labels.shape[1]
    last = torch.where(labelled, torch.arange(t, device=labelled.device), torch.full_like(frame_labels, -1)).max(dim=1).values
    return torch.where(last >= 0, frame_labels.gather(1, last.clamp(min=0).unsqueeze(1)).squeeze(1),
                       torch.full_like(last, -1))


def r3d_losses(output: R3DOutput, targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Frame-wise CE + weighted query-class CE + duration MSE (weights 1 each).

    targets: ``mask`` (B, T) bool valid frames; ``frame_labels`` (B, T) long (-1 = ignore);
    ``future_classes`` (B, Q) long (K = NONE ends the transcript, -1 = ignore the slot);
    ``future_durations`` (B, Q) float fractions of the horizon over the real action slots.
    Returns {"segmentation", "classes", "durations", "total"}.
    """
    mask = targets["mask"].bool()
    frame_labels = targets["frame_labels"].long()
    future = targets["future_classes"].long()
    none_class = output.action_logits.shape[-1] - 1

    frame_ok = mask & (frame_labels >= 0)
    seg_logits = output.segmentation_logits.float()
    segmentation = F.cross_entropy(seg_logits[frame_ok], frame_labels[frame_ok]) if frame_ok.any() \
        else seg_logits.sum() * 0.0

    slot_ok = future >= 0
    per_slot = F.cross_entropy(output.action_logits.float().transpose(1, 2), future.clamp(min=0), reduction="none")
    last = last_observed_label(frame_labels, mask)
    first_future = future[:, 0]
    weight = torch.where((first_future >= 0) & (first_future != last), TRANSITION_WEIGHT, 1.0)
    w = weight.unsqueeze(1) * slot_ok.float()
    classes = (per_slot * w).sum() / w.sum().clamp(min=1e-6)

    action_slots = slot_ok & (future != none_class)
    predicted = normalised_durations(output.duration_logits, action_slots)
    err = (predicted - targets["future_durations"].float()) ** 2
    durations = (err * action_slots).sum() / action_slots.sum().clamp(min=1)

    return {"segmentation": segmentation, "classes": classes, "durations": durations,
            "total": segmentation + classes + durations}
