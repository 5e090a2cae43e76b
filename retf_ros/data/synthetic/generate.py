"""One synthetic sequence -> Clip, and a whole synthetic clip store (``retf synth``)."""
from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from retf_ros.data.clipstore import Clip, ClipStoreWriter, write_clip
from retf_ros.data.synthetic import body as body_model
from retf_ros.data.synthetic import grammar, render, scene

GENERATOR_VERSION = "hrc-bench-2"
SPLIT_RATIO = (0.7, 0.15, 0.15)  # train / val / test, by whole sequences
CHUNK = 32                       # frames per vectorised noise pass


@dataclass(frozen=True)
class SynthConfig:
    width: int = 160
    height: int = 120
    fps: float = 15.0
    min_duration_s: float = 40.0
    max_duration_s: float = 70.0
    # Whole assembly cycles per sequence; None = cycles until a duration drawn in
    # [min_duration_s, max_duration_s] is filled (continuous recordings, what the node sees).
    # Whole-cycle clips suit the long-term anticipation protocol (docs/data.md: why 2).
    cycles: int | None = None
    sensor: render.SensorModel = field(default_factory=render.SensorModel)
    skeleton_jitter_m: float = 0.006
    joint_dropout: float = 0.01
    frame_dropout: float = 0.01


@dataclass
class SyntheticSequence:
    """A generated sequence with the ground truth behind it (tests and the preview use it)."""

    clip: Clip
    plan: grammar.Plan
    camera: scene.Camera
    tray: render.TrayCue
    part_visible: np.ndarray     # (T,) bool
    part_pixel: np.ndarray       # (T, 2) projected part centre
    render_seconds: float


def clip_name(index: int) -> str:
    return f"synth_{index:04d}"


def _streams(seed: int, index: int) -> dict[str, np.random.Generator]:
    """Independent random streams, so forcing a branch or changing one effect moves nothing else."""
    names = ("plan", "body", "scene", "rgb", "depth", "skeleton", "lighting")
    children = np.random.SeedSequence([seed, index]).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children)}


def generate_sequence(seed: int, index: int, config: SynthConfig = SynthConfig(),
                      force: dict[tuple[int, str], bool] | None = None,
                      duration_s: float | None = None) -> SyntheticSequence:
    """Sequence ``index`` of the dataset with ``seed``; ``force`` fixes branch outcomes (tests)."""
    body_model.joint_index()  # the one-off layout import is not rendering time
    # CPU time of this process: a per-core figure that other load on the machine does not skew.
    start = time.process_time()
    rng = _streams(seed, index)
    duration = rng["plan"].uniform(config.min_duration_s, config.max_duration_s)
    speed = rng["plan"].uniform(0.8, 1.25)
    if duration_s is not None:
        duration = duration_s
    plan = grammar.plan_sequence(rng["plan"], duration, speed, force, cycle_count=config.cycles)
    duration = plan.duration_s
    n = int(np.floor(duration * config.fps))
    times = np.arange(n, dtype=np.float64) / config.fps

    shape = body_model.BodyShape.sample(rng["body"])
    bench = body_model.Workbench.sample(rng["body"], shape)
    motion = body_model.drive(plan, bench, times, rng["body"])
    joints_world = body_model.pose(shape, bench, motion, times, rng["body"])

    camera = scene.sample_camera(rng["scene"], config.width, config.height)
    background = scene.render_background(rng["scene"], camera, scene.scene_boxes(rng["scene"], bench))
    palette = render.Palette.sample(rng["scene"])
    tray = render.place_tray(rng["scene"], camera, background)
    renderer = render.FrameRenderer(camera, background, palette, tray)

    joints_cam = camera.to_camera(joints_world)
    part_cam = camera.to_camera(motion.part)
    cycle_of_frame = plan.cycle_index_at(times)
    red = np.array([c.red for c in plan.cycles])[cycle_of_frame]
    tray_near = np.array([c.tray_near for c in plan.cycles])[cycle_of_frame]
    hue = rng["scene"].uniform(0.9, 1.1, size=3)
    part_colour = np.where(red[:, None], render.RED * hue, render.BLUE * hue)

    gain = _lighting(rng["lighting"], times)
    vignette = _vignette(config.width, config.height, rng["lighting"].uniform(0.1, 0.3))
    geometry = renderer.layout(joints_cam, part_cam, motion.part_visible)
    rgb, depth = _render_frames(renderer, geometry, part_colour, tray_near, gain, vignette, rng, config)
    skeleton = _skeleton_noise(joints_cam, rng["skeleton"], config)
    render_seconds = time.process_time() - start

    clip = Clip(clip_id=clip_name(index), stamps=times, labels=plan.labels_at(times),
                rgb=rgb, depth=depth, skeleton=skeleton, intrinsics=camera.K.copy())
    return SyntheticSequence(clip=clip, plan=plan, camera=camera, tray=tray, part_visible=motion.part_visible,
                             part_pixel=camera.project(part_cam), render_seconds=render_seconds)


def _render_frames(renderer: render.FrameRenderer, geometry: render.FrameLayout, part_colour: np.ndarray,
                   tray_near: np.ndarray, gain: np.ndarray, vignette: np.ndarray,
                   rng: dict[str, np.random.Generator], config: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """Draw every frame, CHUNK frames at a time through the vectorised sensor effects.

    Returns rgb (T, H, W, 3) uint8 and depth (T, H, W) uint16 mm.
    """
    n = len(tray_near)
    rgb = np.empty((n, config.height, config.width, 3), dtype=np.uint8)
    depth = np.empty((n, config.height, config.width), dtype=np.uint16)
    linear = np.empty((CHUNK, config.height, config.width, 3), dtype=np.float32)
    metres = np.empty((CHUNK, config.height, config.width), dtype=np.float32)
    rgb_noise = render.NoiseBank(rng["rgb"], linear.size)
    depth_noise = render.NoiseBank(rng["depth"], metres.size)
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        for k, t in enumerate(range(lo, hi)):
            renderer.frame(geometry, t, part_colour[t], bool(tray_near[t]), linear[k], metres[k])
        rgb[lo:hi] = render.apply_rgb_effects(linear[:hi - lo], gain[lo:hi], vignette, rgb_noise, config.sensor)
        depth[lo:hi] = render.apply_depth_effects(metres[:hi - lo], depth_noise, config.sensor)
    return rgb, depth


def _lighting(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
    """(T, 3) per-channel gain: slow drift, a colour tint, and lights dimming now and then."""
    n = len(times)
    base = rng.uniform(0.8, 1.1)
    phases = rng.uniform(0, 2 * np.pi, size=(2, 3))
    drift = 0.08 * np.sin(0.11 * times[:, None] + phases[0]) + 0.03 * np.sin(0.37 * times[:, None] + phases[1])
    tint = rng.uniform(0.94, 1.06, size=3)
    dim = np.ones(n)
    t = rng.uniform(5, 20)
    end = times[-1] if n else 0.0
    while t < end:
        length = rng.uniform(2, 6)
        dim[(times >= t) & (times < t + length)] = rng.uniform(0.65, 0.85)
        t += length + rng.uniform(10, 30)
    return (base * tint * (1 + drift) * dim[:, None]).astype(np.float32)


def _vignette(width: int, height: int, strength: float) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    r2 = ((x - width / 2) / (width / 2)) ** 2 + ((y - height / 2) / (height / 2)) ** 2
    return (1 - strength * r2 / 2).astype(np.float32)


def _skeleton_noise(joints_cam: np.ndarray, rng: np.random.Generator, config: SynthConfig) -> np.ndarray:
    """Tracker effects: jitter (more on hands and on legs hidden by the bench), dropped joints,
    and whole-frame dropouts (runs of 1-4 frames), all NaN."""
    n, j, _ = joints_cam.shape
    J = body_model.joint_index()
    scale = np.ones(j)
    for name in ("hand_tip_left", "thumb_left", "hand_tip_right", "thumb_right"):
        scale[J[name]] = 1.5
    for name in ("knee_left", "knee_right", "ankle_left", "ankle_right", "foot_left", "foot_right"):
        scale[J[name]] = 3.0
    noisy = joints_cam + rng.standard_normal((n, j, 3)) * config.skeleton_jitter_m * scale[None, :, None]
    drop_joint = rng.random((n, j)) < config.joint_dropout * np.where(scale >= 3.0, 4.0, 1.0)[None, :]
    starts = rng.random(n) < config.frame_dropout / 2.5
    lengths = rng.integers(1, 5, size=n)
    drop_frame = np.zeros(n, dtype=bool)
    for s in np.flatnonzero(starts):
        drop_frame[s:s + lengths[s]] = True
    noisy[drop_joint] = np.nan
    noisy[drop_frame] = np.nan
    return noisy.astype(np.float32)


def split_sequences(count: int, seed: int) -> dict[str, list[str]]:
    """Whole sequences to train / val / test in the SPLIT_RATIO, by a seeded permutation."""
    order = np.random.default_rng(np.random.SeedSequence([seed, 7919])).permutation(count)
    n_val = int(round(count * SPLIT_RATIO[1]))
    n_test = int(round(count * SPLIT_RATIO[2]))
    if count >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    n_train = count - n_val - n_test
    names = [clip_name(int(i)) for i in order]
    return {"train": sorted(names[:n_train]), "val": sorted(names[n_train:n_train + n_val]),
            "test": sorted(names[n_train + n_val:])}


def store_meta(config: SynthConfig, seed: int, count: int) -> dict:
    return {
        "source": "synthetic",
        "fps": config.fps,
        "modalities": ["rgb", "depth", "skeleton"],
        "skeleton_layout": body_model.LAYOUT_NAME,
        "skeleton_frame": "camera optical frame (x right, y down, z forward), metres",
        "resolution": [config.width, config.height],
        "default_split": "default",
        "task": "anticipation",
        "generator": {"name": "retf_ros.data.synthetic", "version": GENERATOR_VERSION, "seed": seed,
                      "sequences": count, "config": asdict(config), "split_ratio": list(SPLIT_RATIO)},
        "cues": {branch: grammar.CUE_MODALITY[branch] for branch in grammar.BRANCHES},
    }


def _generate_and_write(job: tuple) -> tuple[int, float, float]:
    """Worker body: one sequence rendered and written; returns (frames, generation CPU s,
    CPU s including compression and writing)."""
    root, seed, index, config = job
    start = time.process_time()
    sequence = generate_sequence(seed, index, config)
    write_clip(root, sequence.clip, num_classes=len(grammar.CLASSES))
    write_cycle_annotations(Path(root), sequence)
    return sequence.clip.num_frames, sequence.render_seconds, time.process_time() - start


ANNOTATIONS_DIR = "cycles"


def cycle_annotations(plan: grammar.Plan) -> list[dict]:
    """Per cycle of ``plan``: its span, branch outcomes and reveal times (seconds), as JSON-ready dicts."""
    return [{"index": c.index, "start_s": c.start_s, "end_s": c.end_s,
             "outcome": {b: c.outcome(b) for b in grammar.BRANCHES}, "reveal_s": c.reveal_s}
            for c in plan.cycles]


def write_cycle_annotations(root: Path, sequence: SyntheticSequence) -> Path:
    """``root/cycles/<clip>.json``: per cycle its span, outcomes and branch times (seconds), so
    an evaluation can score the anticipation of each cue-carrying branch separately."""
    cycles = cycle_annotations(sequence.plan)
    path = root / ANNOTATIONS_DIR / f"{sequence.clip.clip_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"clip": sequence.clip.clip_id, "cue_modality": grammar.CUE_MODALITY,
                                "cycles": cycles}, indent=1) + "\n")
    return path


def read_cycle_annotations(root: Path, clip_ids: list[str]) -> dict[str, list[dict]] | None:
    """{clip id: its cycles as written by :func:`write_cycle_annotations`}, or None when the
    store has no annotations (it was not generated by ``retf synth``)."""
    folder = Path(root) / ANNOTATIONS_DIR
    if not folder.is_dir():
        return None
    found = {}
    for clip_id in clip_ids:
        path = folder / f"{clip_id}.json"
        if path.exists():
            found[clip_id] = json.loads(path.read_text())["cycles"]
    return found or None


@dataclass(frozen=True)
class SynthReport:
    frames: int
    render_seconds: float   # CPU seconds generating frames (all processes)
    cpu_seconds: float      # CPU seconds generating, compressing and writing (all processes)
    total_seconds: float    # wall clock

    @property
    def fps_per_core(self) -> float:
        return self.frames / max(self.render_seconds, 1e-9)


def generate_store(out: Path, sequences: int, seed: int, config: SynthConfig = SynthConfig(),
                   workers: int = 1, progress: bool = True) -> SynthReport:
    """Write the synthetic clip store. ``render_seconds`` sums the per-sequence CPU time of
    generation (plan, skeleton, scene, drawing, sensor effects; not compression or disk), so
    frames / render_seconds is the frame rate of one core."""
    out = Path(out)
    start = time.perf_counter()
    body_model.joint_index()  # import the layout once, before any worker is forked
    writer = ClipStoreWriter(out, list(grammar.CLASSES), store_meta(config, seed, sequences))
    for stale in (out / ANNOTATIONS_DIR).glob("*.json"):
        stale.unlink()
    jobs = [(str(out), seed, i, config) for i in range(sequences)]
    bar = tqdm(total=sequences, desc="retf synth", unit="seq", file=sys.stderr, disable=not progress)
    frames, render_seconds, cpu_seconds = 0, 0.0, 0.0
    if workers <= 1:
        results = map(_generate_and_write, jobs)
    else:
        pool = ProcessPoolExecutor(max_workers=min(workers, os.cpu_count() or 1))
        results = pool.map(_generate_and_write, jobs)
    try:
        for count, seconds, cpu in results:
            frames += count
            render_seconds += seconds
            cpu_seconds += cpu
            bar.update(1)
            bar.set_postfix(fps_core=f"{frames / max(render_seconds, 1e-9):.0f}")
    finally:
        bar.close()
        if workers > 1:
            pool.shutdown(cancel_futures=True)  # Ctrl-C: do not render the queued sequences
    writer.write_split("default", split_sequences(sequences, seed))
    writer.finish()
    return SynthReport(frames=frames, render_seconds=render_seconds, cpu_seconds=cpu_seconds,
                       total_seconds=time.perf_counter() - start)
