"""Shared fixtures. The DDS network rule lives here, once: every ROS process a test starts
gets its environment from the ``ros_env`` fixture (loopback-only Fast DDS profile, a
ROS_DOMAIN_ID of its own per test worker, ROS_LOG_DIR in a temporary directory)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
PYTHON = sys.executable


def _worker_domain_id() -> int:
    """Distinct ROS_DOMAIN_ID per pytest-xdist worker (gw0 -> 40, gw1 -> 41, ...); 40 alone."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return 40 + int(worker.removeprefix("gw") or 0)


@pytest.fixture
def ros_env(tmp_path):
    """Environment dict for subprocesses that use DDS: loopback only, private domain, temp logs.

    Also removes Fast DDS shared-memory segments left behind by killed processes afterwards.
    """
    from retf_ros.ros.loopback import loopback_environment, remove_stale_shm_segments

    log_dir = tmp_path / "ros_log"
    log_dir.mkdir()
    env = loopback_environment(_worker_domain_id(), log_dir)
    yield env
    remove_stale_shm_segments()


@pytest.fixture
def shared_data() -> Path:
    """The real recorded data next to the checkout (../shared/data); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} not present")
    return SHARED_DATA
