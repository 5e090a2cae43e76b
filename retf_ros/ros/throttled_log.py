"""Rate-limited warnings: at most one line per key per period, and the lines held back are
reported as what they were.

A key (e.g. "rgb/encoding") may cover messages that differ (an encoding 'yuv422', then ''):
the count of held-back lines is therefore never appended to the next, possibly different,
message. Once the period is over it goes out as a line of its own that names the key and
quotes the last held-back message (:meth:`ThrottledLog.flush`, called before each new line
of the key and periodically by the owner, so a count is not kept back forever).
Thread-safe: the node's callbacks, its timer and its inference worker all report here.

Lines go out through ``emit`` (the owner's ``lambda text: logger.warning(text)``): rclpy's
logger identifies its caller by reading the calling source file, and a first call from a file
it has not read yet (this one) cost 150 ms in a subscription callback on a loaded machine,
long enough for camera frames to be overwritten in the node's queue.
"""
from __future__ import annotations

import threading
import time
from typing import Callable


class ThrottledLog:
    def __init__(self, emit: Callable[[str], None], period_s: float, clock: Callable[[], float] = time.monotonic):
        self._emit, self._period, self._clock = emit, period_s, clock
        self._last: dict[str, float] = {}
        self._held: dict[str, tuple[int, str]] = {}   # key -> (lines held back, the last of them)
        self._lock = threading.Lock()

    def warning(self, key: str, text: str) -> None:
        with self._lock:
            now = self._clock()
            if now - self._last.get(key, -1e18) < self._period:
                count, _ = self._held.get(key, (0, ""))
                self._held[key] = (count + 1, text)
                return
            self._flush_key(key)
            self._last[key] = now
            self._emit(text)

    def flush(self) -> None:
        """Report the held-back lines of every key whose period is over."""
        with self._lock:
            now = self._clock()
            for key in [k for k in self._held if now - self._last.get(k, -1e18) >= self._period]:
                self._flush_key(key)
                self._last[key] = now

    def _flush_key(self, key: str) -> None:
        held = self._held.pop(key, None)
        if held is not None:
            count, last = held
            self._emit(f"{count} more '{key}' line{'s' if count > 1 else ''} held back since the last "
                                 f"report, the last: {last}")
