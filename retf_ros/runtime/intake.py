"""Frames lost before the node saw them, from the publishers' sequence numbers.

DDS numbers every sample a publisher (writer) sends; the subscriber gets that number with each
message (rclpy's MessageInfo ``publication_sequence_number`` and ``publisher_gid``). A gap
between two consecutive numbers of one publisher is frames that publisher sent but the
subscription callback never got: dropped on the way (best effort) or overwritten in the node's
keep-last queue because the node took messages more slowly than they arrived. The first
message of a publisher only sets the baseline (samples sent before the match are not losses).
"""
from __future__ import annotations

from collections import OrderedDict

MAX_PUBLISHERS = 64  # publishers remembered (the least recently heard of is forgotten first)


class SequenceGaps:
    def __init__(self):
        self._last: OrderedDict[bytes, int] = OrderedDict()

    def lost(self, publisher: bytes, sequence: int | None) -> int:
        """Frames lost between the previous message of ``publisher`` and this one (``sequence``;
        None or <= 0 where the middleware gives no sequence numbers: nothing can be said)."""
        if sequence is None or sequence <= 0:
            return 0
        previous = self._last.pop(publisher, None)
        self._last[publisher] = sequence
        if len(self._last) > MAX_PUBLISHERS:
            self._last.popitem(last=False)
        if previous is None or sequence <= previous:
            return 0
        return sequence - previous - 1


def message_info_key(info) -> tuple[bytes, int | None]:
    """(publisher id, publication sequence number) of an rclpy MessageInfo dict."""
    gid = info.get("publisher_gid") or {}
    return bytes(gid.get("data", b"")), info.get("publication_sequence_number")
