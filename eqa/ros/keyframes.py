"""Keyframe selection: of a camera stream (10-30 Hz), keep a frame when the robot has moved `min_distance`
metres or turned `min_angle` radians since the last kept one (0 and 0: keep every frame). Kept frames wait in
a bounded queue until the agent's next decision takes them; the oldest are dropped first.
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from typing import Deque, Optional

import numpy as np

from mapping.frame import Frame, pose_xy_yaw, wrap_angle


@dataclass
class KeyframeQueue:
    """Keyframes since the last `take`. min_distance: metres; min_angle: radians; capacity: frames kept."""

    min_distance: float = 1.0
    min_angle: float = 0.5
    capacity: int = 16
    dropped: int = 0
    _last: Optional[tuple[float, float, float]] = None
    _frames: Deque[Frame] = field(default_factory=collections.deque)

    def offer(self, frame: Frame, force: bool = False) -> bool:
        """Keep `frame` (its T_world_base must be set) if it is far enough from the last kept one, or `force`;
        returns whether it was kept."""
        x, y, yaw = pose_xy_yaw(np.asarray(frame.T_world_base))
        if not force and self._last is not None:
            lx, ly, lyaw = self._last
            moved = math.hypot(x - lx, y - ly)
            turned = abs(float(wrap_angle(yaw - lyaw)))
            if moved < self.min_distance and turned < self.min_angle:
                return False
        if len(self._frames) >= self.capacity:
            self._frames.popleft()
            self.dropped += 1
        self._frames.append(frame)
        self._last = (x, y, yaw)
        return True

    def take(self) -> list[Frame]:
        """The kept frames, oldest first; the queue is empty afterwards."""
        frames = list(self._frames)
        self._frames.clear()
        return frames

    def newest(self) -> Optional[Frame]:
        return self._frames[-1] if self._frames else None

    def clear(self) -> None:
        """Drop the kept frames and forget the last pose (the next frame is kept)."""
        self._frames.clear()
        self._last = None

    def __len__(self) -> int:
        return len(self._frames)
