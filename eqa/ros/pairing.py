"""Pairing of messages from several streams by stamp (colour, depth and camera info), without message_filters:
a set is emitted when every stream has a message within `tolerance` seconds of the first stream's message.

Streams arrive in stamp order per stream but interleaved arbitrarily. A first-stream message is dropped when
it can no longer be matched: every other stream has moved past it by more than the tolerance, or its queue
overflowed. Queues are bounded, so a stream that stops never grows memory. A message stamped exactly like the
newest one queued of its stream replaces it: a camera repeating its last frame (a robot standing still) takes
one place per stream, so it cannot push out older messages still waiting for a late stream.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Deque, Optional, Sequence


@dataclass
class PairingStats:
    """Counts since the pairer was made: sets emitted, first-stream messages dropped unmatched, messages of any
    stream dropped because their queue was full, and queued messages replaced by a repeat of their stamp."""

    paired: int = 0
    unmatched: int = 0
    overflow: int = 0
    replaced: int = 0


@dataclass
class StampPairer:
    """Pairs messages of `streams` (names; the first one anchors each set) whose stamps (seconds) lie within
    `tolerance` of the anchor's. `queue_size`: messages kept per stream."""

    streams: Sequence[str]
    tolerance: float
    queue_size: int = 10
    stats: PairingStats = field(default_factory=PairingStats)

    def __post_init__(self) -> None:
        if len(self.streams) < 2 or len(set(self.streams)) != len(self.streams):
            raise ValueError(f"pairing needs two or more distinct streams, got {list(self.streams)}")
        if not self.tolerance >= 0 or self.queue_size < 1:
            raise ValueError("pairing tolerance must be >= 0 s and queue_size >= 1")
        self._queues: dict[str, Deque[tuple[float, Any]]] = {s: collections.deque() for s in self.streams}

    def add(self, stream: str, stamp: float, msg: Any) -> list[dict[str, Any]]:
        """Queue `msg` of `stream` at `stamp` seconds; returns the sets completed by it (oldest first), each a
        dict stream -> message plus "stamp" (the anchor's)."""
        queue = self._queues[stream]
        if queue and queue[-1][0] == float(stamp):
            queue[-1] = (float(stamp), msg)  # a repeat of the newest: the later message wins
            self.stats.replaced += 1
            return []  # the queue's stamps are as before: nothing new can match
        if len(queue) >= self.queue_size:
            queue.popleft()
            self.stats.overflow += 1
            if stream == self.streams[0]:
                self.stats.unmatched += 1
        queue.append((float(stamp), msg))
        out = []
        while (found := self._match()) is not None:
            out.append(found)
        return out

    def _match(self) -> Optional[dict[str, Any]]:
        anchors = self._queues[self.streams[0]]
        while anchors:
            t, anchor = anchors[0]
            picks, waiting, lost = {}, False, False
            for name in self.streams[1:]:
                queue = self._queues[name]
                best = min(range(len(queue)), key=lambda i: abs(queue[i][0] - t), default=None)
                if best is not None and abs(queue[best][0] - t) <= self.tolerance:
                    picks[name] = best
                elif queue and queue[-1][0] > t + self.tolerance:
                    lost = True  # this stream has moved past the anchor: it will never match
                else:
                    waiting = True
            if lost:
                anchors.popleft()
                self.stats.unmatched += 1
                continue
            if waiting:
                return None
            anchors.popleft()
            found: dict[str, Any] = {self.streams[0]: anchor, "stamp": t}
            for name, index in picks.items():
                queue = self._queues[name]
                found[name] = queue[index][1]
                for _ in range(index + 1):  # the match and everything older in that stream
                    queue.popleft()
            self.stats.paired += 1
            return found
        return None

    def clear(self) -> None:
        """Forget every queued message."""
        for queue in self._queues.values():
            queue.clear()
