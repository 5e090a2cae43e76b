"""How every retf_ros process ends on SIGINT/SIGTERM: quietly, with exit status 0.

rclpy turns the signal into a context shutdown (``ExternalShutdownException`` from spin), and
Python may also raise ``KeyboardInterrupt`` for the same SIGINT at the next bytecode, possibly
in the middle of clean-up. A call into rcl that was already under way when the signal shut the
context down (a ``publish`` just after an ``rclpy.ok()`` check) fails with ``RCLError``: that is
the same signal arriving, not a failure. ``until_signalled`` swallows all three and then ignores
further signals, so the clean-up that follows (joining threads, closing bag files) always runs
to the end::

    try:
        with until_signalled():
            executor.spin()
    finally:
        clean_up()
        rclpy.try_shutdown()
"""
from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException


@contextmanager
def until_signalled() -> Iterator[None]:
    try:
        yield
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError:
        if rclpy.ok():
            raise  # the context is alive: a real failure
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
