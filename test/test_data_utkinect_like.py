"""The UTKinect-format source writer used for measurements (retf_ros/data/synthetic/utkinect_like.py):
its files import with `retf data import utkinect` into the dataset's structure."""
from __future__ import annotations

import numpy as np

from retf_ros.data.clipstore import ClipStore
from retf_ros.data.readers import import_utkinect
from retf_ros.data.readers.utkinect import ACTIONS
from retf_ros.data.synthetic.utkinect_like import write_source
from retf_ros.training.windows import segments


def test_written_source_imports_as_twenty_sequences_of_the_ten_actions_in_order(tmp_path):
    src = write_source(tmp_path / "src", seed=3)
    result = import_utkinect(src, tmp_path / "store")
    store = ClipStore(tmp_path / "store")
    assert result.clips == 20 and not result.problems
    assert [len(store.clip_ids("cross_subject", p)) for p in ("train", "val", "test")] == [8, 2, 10]
    assert store.fps == 30.0 and store.skeleton_layout == "kinect_v1_20"
    clip = store.load("s05_e02")
    order = [store.classes[c] for c, _ in segments(clip.labels) if store.classes[c] != "undefined"]
    assert order == list(ACTIONS)
    assert clip.skeleton.shape[1:] == (20, 3) and np.isfinite(clip.skeleton).all()
    # The body moves differently in different actions (the sit-down lowers the hips).
    sit = clip.skeleton[clip.labels == store.classes.index("sitDown")]
    assert sit[-1, 0, 1] < sit[0, 0, 1] - 0.2
