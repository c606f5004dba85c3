"""A small transform buffer (tf2_ros's Python buffer has no pip wheel): static transforms, and timed transforms
kept for `cache_s` seconds, looked up between any two connected frames at a stamp with linear interpolation
of translations and spherical interpolation of rotations.

A lookup raises LookupError naming the problem when the frames are not connected, or when the stamp lies
outside a timed transform's samples by more than `max_extrapolation_s` (stale TF or odometry): a frame
without a pose at its own stamp is dropped, never given another moment's pose.
Poses: 4x4 float64 T_parent_child (DESIGN.md section 2); stamps in seconds.
"""
from __future__ import annotations

import bisect
import collections
from dataclasses import dataclass, field

import numpy as np

from eqa.ros.convert import matrix_quaternion, quaternion_matrix
from mapping.frame import check_pose


class PoseNotYet(LookupError):
    """The stamp is newer than a timed transform's newest sample by more than the tolerance: the pose may still
    arrive (TF and odometry travel apart from the images)."""


def _slerp(q0: np.ndarray, q1: np.ndarray, a: float) -> np.ndarray:
    dot = float(np.dot(q0, q1))
    if dot < 0:
        q1, dot = -q1, -dot
    if dot > 0.9995:
        q = q0 + a * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(min(dot, 1.0))
    return (np.sin((1 - a) * theta) * q0 + np.sin(a * theta) * q1) / np.sin(theta)


@dataclass
class _Timed:
    """One timed edge: stamps (sorted) and their transforms."""

    stamps: list = field(default_factory=list)
    poses: list = field(default_factory=list)

    def insert(self, stamp: float, T: np.ndarray, cache_s: float) -> None:
        i = bisect.bisect_right(self.stamps, stamp)
        if i > 0 and self.stamps[i - 1] == stamp:
            self.poses[i - 1] = T
        else:
            self.stamps.insert(i, stamp)
            self.poses.insert(i, T)
        cut = bisect.bisect_left(self.stamps, self.stamps[-1] - cache_s)
        del self.stamps[:cut], self.poses[:cut]

    def at(self, stamp: float, max_extrapolation_s: float, name: str, ahead: bool) -> np.ndarray:
        if not self.stamps:
            raise PoseNotYet(f"{name}: no transform since time jumped back")
        first, last = self.stamps[0], self.stamps[-1]
        if stamp > last:
            if not ahead or stamp - last > max_extrapolation_s:
                raise PoseNotYet(f"{name}: no transform at {stamp:.3f} s, the newest is {stamp - last:.3f} s older "
                                 "(stale TF or odometry)")
            return self.poses[-1]
        if stamp < first:
            if first - stamp > max_extrapolation_s:
                raise LookupError(f"{name}: no transform at {stamp:.3f} s, the oldest kept is {first:.3f} s")
            return self.poses[0]
        i = bisect.bisect_left(self.stamps, stamp)
        if self.stamps[i] == stamp:
            return self.poses[i]
        t0, t1 = self.stamps[i - 1], self.stamps[i]
        a = (stamp - t0) / (t1 - t0)
        T0, T1 = self.poses[i - 1], self.poses[i]
        T = np.eye(4)
        T[:3, 3] = (1 - a) * T0[:3, 3] + a * T1[:3, 3]
        q = _slerp(np.array(matrix_quaternion(T0[:3, :3])), np.array(matrix_quaternion(T1[:3, :3])), a)
        T[:3, :3] = quaternion_matrix(*q)
        return T


class TransformBuffer:
    """Static and timed transforms between named frames (a tree, as in tf2)."""

    def __init__(self, cache_s: float = 10.0, max_extrapolation_s: float = 0.1) -> None:
        self.cache_s, self.max_extrapolation_s = cache_s, max_extrapolation_s
        self._static: dict[tuple[str, str], np.ndarray] = {}
        self._timed: dict[tuple[str, str], _Timed] = {}
        self._neighbours: dict[str, set[str]] = collections.defaultdict(set)

    def set_transform(self, parent: str, child: str, T_parent_child: np.ndarray, stamp: float | None = None) -> None:
        """Add T_parent_child: static when stamp is None, else at stamp seconds. ValueError for a transform
        that is not a finite rigid 4x4 or for empty frame names."""
        T = np.asarray(T_parent_child, dtype=float)
        if not parent or not child or parent == child:
            raise ValueError(f"a transform needs two different frame names, got {parent!r} -> {child!r}")
        check_pose(T, f"transform {parent} -> {child}")  # a finite rigid 4x4
        self._neighbours[parent].add(child)
        self._neighbours[child].add(parent)
        if stamp is None:
            self._static[(parent, child)] = T
        else:
            self._timed.setdefault((parent, child), _Timed()).insert(float(stamp), T, self.cache_s)

    def lookup(self, target: str, source: str, stamp: float, ahead: bool = True) -> np.ndarray:
        """T_target_source at stamp seconds (maps points in `source` into `target`); LookupError if unknown.
        ahead False: a stamp newer than a timed transform's newest sample raises PoseNotYet however close."""
        if target == source:
            return np.eye(4)
        path = self._path(target, source)
        T = np.eye(4)
        for a, b in zip(path, path[1:]):
            T = T @ self._edge(a, b, stamp, ahead)
        return T

    def clear_timed(self) -> None:
        """Forget every timed sample (time jumped back: a restarted simulator, a looped bag); the frames stay
        known (lookups wait for new samples: PoseNotYet), static transforms stay."""
        for timed in self._timed.values():
            timed.stamps.clear()
            timed.poses.clear()

    def latest_stamp(self, parent: str, child: str) -> float | None:
        """The newest stamp of the timed transform parent -> child (None if it has none)."""
        timed = self._timed.get((parent, child))
        return timed.stamps[-1] if timed and timed.stamps else None

    def frames(self) -> set[str]:
        return set(self._neighbours)

    def _edge(self, a: str, b: str, stamp: float, ahead: bool = True) -> np.ndarray:
        """T_a_b for neighbouring frames a, b."""
        for (parent, child), inverse in (((a, b), False), ((b, a), True)):
            if (parent, child) in self._static:
                T = self._static[(parent, child)]
            elif (parent, child) in self._timed:
                T = self._timed[(parent, child)].at(stamp, self.max_extrapolation_s, f"{parent} -> {child}", ahead)
            else:
                continue
            return np.linalg.inv(T) if inverse else T
        raise LookupError(f"no transform between {a} and {b}")

    def _path(self, target: str, source: str) -> list[str]:
        """Frames from target to source through known transforms (breadth-first)."""
        if target not in self._neighbours or source not in self._neighbours:
            missing = [f for f in (target, source) if f not in self._neighbours]
            raise LookupError(f"no transform to or from frame(s) {missing} yet; known: {sorted(self._neighbours)}")
        previous = {target: None}
        queue = collections.deque([target])
        while queue:
            frame = queue.popleft()
            if frame == source:
                path = [frame]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return path[::-1]
            for n in sorted(self._neighbours[frame]):
                if n not in previous:
                    previous[n] = frame
                    queue.append(n)
        raise LookupError(f"frames {target} and {source} are not connected by any transform")
