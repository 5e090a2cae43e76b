"""until_signalled: a publish cut short by the signal's context shutdown ends quietly; an rcl
failure while the context is alive still surfaces. Runs in a subprocess with the loopback
environment (it creates a real rclpy context)."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import rclpy
from rclpy._rclpy_pybind11 import RCLError
from retf_ros.ros.shutdown import until_signalled

rclpy.init()
try:
    with until_signalled():
        raise RCLError("alive context")
except RCLError:
    print("alive: raised")
rclpy.try_shutdown()           # what the SIGINT handler does to the context
with until_signalled():
    raise RCLError("Failed to publish: publisher's context is invalid")  # a publish cut short
print("after shutdown: quiet")
"""


def test_publish_after_the_signal_shut_the_context_down_is_the_signal(ros_env):
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=ros_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["alive: raised", "after shutdown: quiet"]
