"""The streaming predictor: frames in, anticipations out (docs/method.md section 7).

Each frame that lands on the model's time grid is encoded ONCE by the per-frame encoders and
its tokens go into a ring buffer of the last W frames; every ``stride`` taken frames the
temporal part of the model (RTF exchange + fusion, transformer, heads) re-runs on the buffered
window. Because the encoders see one frame at a time, this equals running the whole model on
the same W frames (token cache == recompute). The node and the offline evaluators share it.

Not thread-safe: one caller (the node's inference worker) drives it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np
import torch

from retf_ros.errors import RetfError
from retf_ros.fusion.inputs import prepare_depth, prepare_rgb, prepare_skeleton
from retf_ros.fusion.model import decode_future
from retf_ros.fusion.skeleton import get_layout
from retf_ros.runtime.anticipation import Anticipation, decode_actions
from retf_ros.runtime.clock import ModelClock, Tick
from retf_ros.device import (autocast, device_name, free_device_memory, select_device,
                             select_precision, synchronize)
from retf_ros.runtime.frames import MODALITIES, FrameSet, InvalidFrame, check_frame
from retf_ros.runtime.health import ErankThresholds, thresholds_for, window_erank_report
from retf_ros.runtime.ring import TokenRing

if TYPE_CHECKING:
    from retf_ros.checkpoint import LoadedCheckpoint

# How far a requested fps / horizon_s may differ from the checkpoint's (the model learned them).
_FIXED_TOLERANCE = 1e-6


@dataclass
class StreamStats:
    """Counters for diagnostics since the predictor was built."""

    frames_offered: int = 0
    frames_taken: int = 0
    frames_skipped: int = 0            # between model ticks (camera faster than the model)
    frames_without_modality: int = 0   # no usable modality of the checkpoint: not taken
    restarts: int = 0                  # time jumped backwards / past a gap: buffers reset
    predictions: int = 0
    last_encode_ms: float = 0.0


def _fixed_by_checkpoint(name: str, requested: float | None, trained: float | None) -> float:
    if trained is None:
        if requested is None:
            raise RetfError(f"the checkpoint's metadata has no {name}: give {name} explicitly")
        return float(requested)
    if requested is not None and abs(float(requested) - float(trained)) > _FIXED_TOLERANCE:
        raise RetfError(f"{name}={requested} differs from the checkpoint's {trained}: the model "
                        f"was trained with {name}={trained}; leave it unset or use that value")
    return float(trained)


class StreamingPredictor:
    """See the module docstring. ``device``: auto | cpu | cuda | cuda:N (``self.device`` is
    the device actually used); ``precision``: fp32 | fp16 (GPU) | bf16 (autocast).

    ``window``: frames per inference (default and maximum: the checkpoint's window);
    ``stride``: taken frames between inferences (default 1); ``horizon_s`` and ``fps``: only
    checked against the checkpoint (the model learned them; a different value is an error).
    """

    def __init__(self, checkpoint: "LoadedCheckpoint", *, device: str = "auto", precision: str = "fp32",
                 window: int | None = None, stride: int | None = None, horizon_s: float | None = None,
                 fps: float | None = None, erank_thresholds: ErankThresholds | None = None):
        meta = checkpoint.metadata
        model = checkpoint.model
        config = model.config
        self.classes: list[str] = list(meta["classes"])
        self.modalities: tuple[str, ...] = tuple(config.modalities)
        unstreamable = [m for m in self.modalities if m not in MODALITIES]
        if unstreamable:
            raise RetfError(f"checkpoint uses precomputed-feature modalities {unstreamable}: streaming needs "
                            f"a model on raw {', '.join(MODALITIES)} frames")
        self.fps = _fixed_by_checkpoint("fps", fps, meta.get("fps"))
        self.horizon_s = _fixed_by_checkpoint("horizon_s", horizon_s, meta.get("horizon_s"))
        if not (self.fps > 0 and self.horizon_s > 0):
            raise RetfError(f"fps={self.fps} and horizon_s={self.horizon_s} must both be > 0")
        trained_window = int(meta.get("window") or config.max_frames)
        self.window = trained_window if window is None else int(window)
        if not 2 <= self.window <= min(trained_window, config.max_frames):
            raise RetfError(f"window={window} must be between 2 and the checkpoint's window {trained_window}")
        self.stride = 1 if stride is None else int(stride)
        if not 1 <= self.stride <= self.window:
            raise RetfError(f"stride={stride} must be between 1 and the window ({self.window} frames)")
        self.image_size = tuple(config.image_size)  # what the encoders were built for
        self.skeleton_layout = meta.get("skeleton_layout") or config.skeleton_layout
        self.num_joints = get_layout(self.skeleton_layout).num_joints if "skeleton" in self.modalities else None
        # Default: the node's default thresholds for this checkpoint (its validation erank distribution).
        self.erank_thresholds = erank_thresholds or thresholds_for(meta)
        self.checkpoint_sha256: str = checkpoint.sha256

        self.device = select_device(device)
        self.dtype = select_precision(precision, self.device)
        self.precision = str(precision).strip().lower()
        self.model = model.to(self.device).eval()
        self.ring = TokenRing(self.window, self.modalities, config.dim, self.device)
        # A gap longer than a whole window leaves nothing current in the buffer: start afresh.
        self.clock = ModelClock(self.fps, max_gap_s=self.window / self.fps)
        self.stats = StreamStats()
        self._since_predict = 0
        self._newest: FrameSet | None = None
        self.last_output = None  # R3DOutput of the latest predict() (debug views, tests)

    # ------------------------------------------------------------------ lifecycle
    @property
    def device_name(self) -> str:
        return device_name(self.device)

    def _live_model(self):
        if self.model is None:
            raise RetfError("the predictor was released; build a new one")
        return self.model

    def warm_up(self, passes: int = 2) -> None:
        """Run the encoders and the temporal model on dummy windows of every length the stream
        will use (1..W frames: a stream starts with short windows), ``passes`` times on the full
        one, so kernel selection and allocations for each shape happen here and not on a live
        frame (on CUDA with fp16/bf16 a first-seen shape cost 100+ ms). Leaves the stream untouched."""
        model = self._live_model()
        h, w = self.image_size
        dummy = FrameSet(stamp=0.0, rgb=np.zeros((h, w, 3), np.uint8), depth=np.ones((h, w), np.float32),
                         skeleton=None if self.num_joints is None else np.zeros((self.num_joints, 3), np.float32))
        tokens = self._encode([dummy], [self.modalities])[0]
        window = {m: t.expand(1, self.window, -1).contiguous() for m, t in tokens.items()}
        mask = torch.ones(1, self.window, dtype=torch.bool, device=self.device)
        lengths = [*range(1, self.window), *[self.window] * passes]
        with torch.no_grad(), autocast(self.device, self.dtype):
            for length in lengths:
                model.forward_tokens({m: t[:, :length] for m, t in window.items()}, mask[:, :length])
        synchronize(self.device)

    def clear_cache(self) -> None:
        """Forget the buffered frames (the next frame starts a new stream)."""
        self._live_model()
        self.ring.clear()
        self.clock.reset()
        self._since_predict = 0
        self._newest = None

    def release(self) -> None:
        """Drop the model and buffers and return cached GPU memory (node deactivate).

        The model's parameters move back to the CPU first (in place), so the GPU memory is
        freed even while the caller still holds the LoadedCheckpoint; build a new predictor
        from it to resume."""
        if self.model is not None and self.device.type != "cpu":
            self.model.to("cpu")
        self.model = None
        self.ring = None
        self._newest = None
        self.last_output = None
        free_device_memory(self.device)

    # ------------------------------------------------------------------ streaming
    def prepare_inputs(self, modality: str, arrays: list[np.ndarray]) -> torch.Tensor:
        """Frames of one modality -> prepared model inputs (N, ...) via retf_ros.fusion.inputs."""
        try:
            if modality == "rgb":
                prepared = [prepare_rgb(a, self.image_size) for a in arrays]
            elif modality == "depth":
                prepared = [prepare_depth(a, self.image_size) for a in arrays]
            else:
                prepared = [prepare_skeleton(a, self.skeleton_layout) for a in arrays]
        except ValueError as exc:
            raise InvalidFrame(str(exc)) from None
        return torch.stack(prepared)

    def _encode(self, frames: list[FrameSet], usable: list[tuple[str, ...]]) -> list[dict[str, torch.Tensor]]:
        """Tokens of frames: per frame, modality -> (C,) float32 on the device, for the
        modalities ``usable`` lists for it. All frames go through the encoders as one batch
        (frames are encoded independently, so this equals encoding them one by one)."""
        rows = {m: [i for i, names in enumerate(usable) if m in names] for m in self.modalities}
        batch = {m: self.prepare_inputs(m, [frames[i].array(m) for i in index])[None].to(self.device)
                 for m, index in rows.items() if index}   # modality -> (1, N_m, ...)
        with torch.no_grad(), autocast(self.device, self.dtype):
            tokens = self._live_model().encode_frames(batch)
        out: list[dict[str, torch.Tensor]] = [{} for _ in frames]
        for m, index in rows.items():
            for j, i in enumerate(index):
                out[i][m] = tokens[m][0, j].float()
        return out

    def _admit(self, frames: FrameSet) -> tuple[Tick, tuple[str, ...]] | None:
        """Check a frame and decide whether the model's grid takes it: (tick, usable modalities)
        or None when it is not taken. Advances the clock and the counters."""
        self._live_model()
        check_frame(frames, self.modalities, self.num_joints)
        self.stats.frames_offered += 1
        usable = tuple(m for m in self.modalities if frames.usable(m))
        if not usable:
            self.stats.frames_without_modality += 1
            return None
        tick = self.clock.offer(frames.stamp)
        if tick is Tick.SKIP:
            self.stats.frames_skipped += 1
            return None
        if tick is Tick.RESTART:
            self.stats.restarts += 1
        return tick, usable

    def _start_new_window(self) -> None:
        """Time jumped (Tick.RESTART): the buffered window is over, the next push starts a new one."""
        self.ring.clear()
        self._since_predict = 0

    def _push(self, frames: FrameSet, tokens: dict[str, torch.Tensor]) -> None:
        self.ring.push(tokens, frames.stamp)
        self.stats.frames_taken += 1
        self._since_predict += 1
        self._newest = frames

    def add_frame(self, frames: FrameSet) -> bool:
        """Offer one synchronised frame; True when it was taken into the window.

        Taken = it lands on the model's time grid (see clock.py) and carries at least one usable
        modality of the checkpoint. Modalities the checkpoint lacks are ignored; a stale or
        missing one is stored as not present (masked by the model). Raises InvalidFrame (a
        RetfError) for malformed input, leaving the buffered window as it was.
        """
        admitted = self._admit(frames)
        if admitted is None:
            return False
        tick, usable = admitted
        started = time.perf_counter()
        if tick is Tick.RESTART:   # the old window is over, even if this frame fails to encode
            self._start_new_window()
        tokens = self._encode([frames], [usable])[0]
        self._push(frames, tokens)
        synchronize(self.device)
        self.stats.last_encode_ms = (time.perf_counter() - started) * 1000.0
        return True

    def stream_many(self, frames: Iterable[FrameSet], batch: int = 32) -> Iterator[Anticipation]:
        """Offline fast path: exactly what ``stream_inference`` on each frame in order yields,
        with the taken frames' encoders run ``batch`` frames at a time (several times faster
        on a CPU). For recorded data only: a malformed frame raises InvalidFrame."""
        iterator = iter(frames)
        while chunk := list(islice(iterator, batch)):
            admitted = [(f, a) for f in chunk if (a := self._admit(f)) is not None]
            if not admitted:
                continue
            started = time.perf_counter()
            tokens = self._encode([f for f, _ in admitted], [usable for _, (_, usable) in admitted])
            synchronize(self.device)
            self.stats.last_encode_ms = (time.perf_counter() - started) * 1000.0 / len(admitted)
            for (f, (tick, _)), frame_tokens in zip(admitted, tokens):
                if tick is Tick.RESTART:  # here, not before encoding: the chunk's earlier frames are the old window's
                    self._start_new_window()
                self._push(f, frame_tokens)
                if self.due():
                    yield self.predict()

    def due(self) -> bool:
        """True when ``stride`` frames were taken since the last prediction."""
        return self.ring is not None and len(self.ring) > 0 and self._since_predict >= self.stride

    def predict(self) -> Anticipation:
        """Run the temporal model on the buffered window (the last W taken frames)."""
        model = self._live_model()
        if self._newest is None or len(self.ring) == 0:
            raise RetfError("no frame has been taken yet: nothing to predict from")
        started = time.perf_counter()
        tokens, present, stamps = self.ring.window()
        mask = torch.ones(1, len(stamps), dtype=torch.bool, device=self.device)
        with torch.no_grad(), autocast(self.device, self.dtype):
            out = model.forward_tokens(tokens, mask, present)
        self.last_output = out
        if not all(bool(torch.isfinite(x).all()) for x in
                   (out.action_logits, out.duration_logits, out.segmentation_logits[:, -1])):
            raise RetfError(f"the model produced non-finite outputs on this window "
                            f"(precision {self.precision}); nothing to publish")
        decoded = decode_future(out.action_logits, out.duration_logits)[0]
        current = torch.softmax(out.segmentation_logits[0, -1].float(), dim=-1)
        current_confidence, current_class = current.max(dim=-1)
        erank = window_erank_report(
            {m: x[0].float().cpu() for m, x in out.tokens_before.items()},
            {m: x[0].float().cpu() for m, x in out.tokens_after.items()},
            out.fused[0].float().cpu(), {m: v[0].cpu() for m, v in out.valid.items()},
            mask[0].cpu(), self.erank_thresholds)
        inference_ms = (time.perf_counter() - started) * 1000.0  # .cpu() above waited for the GPU
        newest = self._newest
        self._since_predict = 0
        self.stats.predictions += 1
        return Anticipation(
            stamp=float(newest.stamp), stamp_ns=newest.stamp_ns, frame_id=newest.frame_id,
            window_frames=len(stamps), window_span_s=float(stamps[-1] - stamps[0]), fps=self.fps,
            modality_states={m: newest.state(m) for m in self.modalities},
            present_frames={m: int(v[0].sum()) for m, v in out.valid.items()},
            current_label=self.classes[int(current_class)], current_class_id=int(current_class),
            current_confidence=float(current_confidence),
            horizon_s=self.horizon_s, actions=decode_actions(decoded, self.classes, self.horizon_s),
            erank=erank, inference_ms=inference_ms)

    def stream_inference(self, frames: FrameSet) -> Anticipation | None:
        """add_frame, then predict when an inference is due; None otherwise."""
        if self.add_frame(frames) and self.due():
            return self.predict()
        return None
