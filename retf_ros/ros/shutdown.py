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

A process whose own threads publish (the node's inference worker) must stop them BEFORE the
context goes away, or their next ``publish`` fails with "publisher's context is invalid".
Such a process initialises rclpy without its signal handlers and uses ``signal_event``::

    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    try:
        with signal_event() as stop:
            while not stop.is_set():
                executor.spin_once(timeout_sec=SIGNAL_POLL_S)
    finally:
        stop_threads()
        rclpy.try_shutdown()
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException


SIGNAL_POLL_S = 0.1  # how long a spin_once waits, so a signal is noticed this fast
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def signal_event() -> Iterator[threading.Event]:
    """SIGINT / SIGTERM set the yielded event (nothing is shut down); further signals are
    ignored once the block is left, so the clean-up that follows runs to the end."""
    stop = threading.Event()
    for number in STOP_SIGNALS:
        signal.signal(number, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)


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


def spin_until_stopped(node, stop: threading.Event) -> None:
    """Spin ``node`` until ``stop`` is set (a "quit" command), the context shuts down or a
    signal arrives (quietly, as :func:`until_signalled`): the loop of the test and demo
    processes that take commands on stdin."""
    with until_signalled():
        while rclpy.ok() and not stop.is_set():
            rclpy.spin_once(node, timeout_sec=SIGNAL_POLL_S)
