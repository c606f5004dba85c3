"""Ground-truth scene description: rooms, walls, objects; JSON save/load.

World frame z up, metres. Room polygons are the interior floor outlines (inside the
walls), counter-clockwise (x, y) vertices. Object poses: `position` is the centre of
the footprint on its support (z = bottom), `yaw` in radians about +z (multiples of
pi/2), `size` = (depth along local x, width along local y, height); the object's
front faces local +x. Bounding boxes are world axis-aligned (min, max) corners.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

ROOM_KINDS = ("kitchen", "living room", "dining room", "bedroom", "bathroom", "office", "hallway", "laundry")

# Instance ids: 0 = nothing hit. Structure ids start at STRUCTURE_ID_BASE; objects use 1..STRUCTURE_ID_BASE-1.
STRUCTURE_ID_BASE = 10000


@dataclass
class Part:
    """One coloured box of an object, in the object's local frame (metres)."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    rgb: tuple[int, int, int]
    emissive: bool = False


@dataclass
class Room:
    room_id: int
    kind: str
    polygon: list[tuple[float, float]]
    floor_id: int
    ceiling_id: int

    def __post_init__(self) -> None:
        if self.kind not in ROOM_KINDS:
            raise ValueError(f"unknown room kind {self.kind!r}; known: {list(ROOM_KINDS)}")

    def area(self) -> float:
        """Floor area in m^2 (shoelace)."""
        p = np.asarray(self.polygon, dtype=float)
        x, y = p[:, 0], p[:, 1]
        return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))

    def bounds(self) -> tuple[float, float, float, float]:
        p = np.asarray(self.polygon, dtype=float)
        return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())

    def contains(self, xy) -> np.ndarray:
        """Whether (..., 2) points lie inside the (rectangular) room outline."""
        xy = np.asarray(xy, dtype=float)
        x0, y0, x1, y1 = self.bounds()
        return (xy[..., 0] >= x0) & (xy[..., 0] <= x1) & (xy[..., 1] >= y0) & (xy[..., 1] <= y1)

    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.bounds()
        return (x0 + x1) / 2.0, (y0 + y1) / 2.0


@dataclass
class Wall:
    """A straight wall along the segment start-end (centre line), with door openings.

    openings: (s0, s1) distances in metres along the segment that are open up to `door_height`.
    """

    instance_id: int
    start: tuple[float, float]
    end: tuple[float, float]
    thickness: float
    height: float
    openings: list[tuple[float, float]] = field(default_factory=list)
    door_height: float = 2.1

    def length(self) -> float:
        return math.dist(self.start, self.end)

    def boxes(self) -> list[tuple[tuple[float, float, float], tuple[float, float, float]]]:
        """World (lo, hi) boxes of the solid wall: pieces between openings plus lintels above them.

        Axis-aligned walls only; each piece is extended by thickness/2 at the wall ends so corners close.
        """
        (x0, y0), (x1, y1) = self.start, self.end
        if abs(y1 - y0) > 1e-9 and abs(x1 - x0) > 1e-9:
            raise ValueError("walls must be axis-aligned")
        length, half = self.length(), self.thickness / 2.0
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        cuts = sorted(self.openings)
        solid, pos = [], -half
        for s0, s1 in cuts:
            solid.append((pos, s0, 0.0, self.height))
            solid.append((s0, s1, self.door_height, self.height))
            pos = s1
        solid.append((pos, length + half, 0.0, self.height))
        out = []
        for a, b, z0, z1 in solid:
            if b - a <= 1e-9:
                continue
            pa = (x0 + ux * a, y0 + uy * a)
            pb = (x0 + ux * b, y0 + uy * b)
            lo = (min(pa[0], pb[0]) - abs(uy) * half, min(pa[1], pb[1]) - abs(ux) * half, z0)
            hi = (max(pa[0], pb[0]) + abs(uy) * half, max(pa[1], pb[1]) + abs(ux) * half, z1)
            out.append((lo, hi))
        return out


@dataclass
class SceneObject:
    instance_id: int
    category: str
    room_id: Optional[int]
    position: tuple[float, float, float]
    yaw: float
    size: tuple[float, float, float]
    color: Optional[str] = None
    state: Optional[str] = None
    group: Optional[str] = None
    support_id: Optional[int] = None
    parts: list[Part] = field(default_factory=list)
    bbox_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    bbox_max: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def local_to_world(self) -> np.ndarray:
        """4x4 T_world_object."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        T = np.eye(4)
        T[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
        T[:3, 3] = self.position
        return T

    def part_boxes(self) -> list[tuple[np.ndarray, np.ndarray, Part]]:
        """World axis-aligned (lo, hi, part) of each part (yaw is a multiple of pi/2)."""
        T = self.local_to_world()
        out = []
        for p in self.parts:
            a = T[:3, :3] @ np.asarray(p.lo) + T[:3, 3]
            b = T[:3, :3] @ np.asarray(p.hi) + T[:3, 3]
            out.append((np.round(np.minimum(a, b), 9), np.round(np.maximum(a, b), 9), p))
        return out

    def update_bbox(self) -> None:
        """Recompute the world AABB from the parts."""
        T = self.local_to_world()
        corners = []
        for p in self.parts:
            lo, hi = np.asarray(p.lo), np.asarray(p.hi)
            for i in range(8):
                corners.append(np.where([(i >> k) & 1 for k in range(3)], hi, lo))
        pts = np.asarray(corners) @ T[:3, :3].T + T[:3, 3]
        self.bbox_min = tuple(float(v) for v in np.round(pts.min(axis=0), 9))
        self.bbox_max = tuple(float(v) for v in np.round(pts.max(axis=0), 9))


@dataclass
class Scene:
    """A whole one-floor house."""

    seed: int
    rooms: list[Room]
    walls: list[Wall]
    objects: list[SceneObject]
    wall_height: float = 2.5

    def floor_area(self) -> float:
        """Total interior floor area in m^2."""
        return float(sum(r.area() for r in self.rooms))

    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of all walls, metres."""
        pts = np.array([w.start for w in self.walls] + [w.end for w in self.walls], dtype=float)
        pad = max((w.thickness for w in self.walls), default=0.0) / 2.0
        return (float(pts[:, 0].min() - pad), float(pts[:, 1].min() - pad),
                float(pts[:, 0].max() + pad), float(pts[:, 1].max() + pad))

    def room_at(self, xy) -> Optional[Room]:
        for room in self.rooms:
            if room.contains(xy):
                return room
        return None

    def object_by_id(self, instance_id: int) -> Optional[SceneObject]:
        for obj in self.objects:
            if obj.instance_id == instance_id:
                return obj
        return None

    def instance_category(self, instance_id: int) -> str:
        """Category of any instance id: object category, 'wall', 'floor', 'ceiling' or 'none'."""
        if instance_id == 0:
            return "none"
        obj = self.object_by_id(instance_id)
        if obj is not None:
            return obj.category
        if any(w.instance_id == instance_id for w in self.walls):
            return "wall"
        for r in self.rooms:
            if r.floor_id == instance_id:
                return "floor"
            if r.ceiling_id == instance_id:
                return "ceiling"
        raise KeyError(f"no instance with id {instance_id}")

    # ---- JSON ----
    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Scene":
        rooms = [Room(**{**r, "polygon": [tuple(p) for p in r["polygon"]]}) for r in data["rooms"]]
        walls = [Wall(**{**w, "start": tuple(w["start"]), "end": tuple(w["end"]),
                         "openings": [tuple(o) for o in w["openings"]]}) for w in data["walls"]]
        objects = []
        for o in data["objects"]:
            parts = [Part(tuple(p["lo"]), tuple(p["hi"]), tuple(p["rgb"]), p["emissive"]) for p in o["parts"]]
            fields = {k: tuple(v) if isinstance(v, list) else v for k, v in o.items() if k != "parts"}
            objects.append(SceneObject(**fields, parts=parts))
        return cls(seed=data["seed"], rooms=rooms, walls=walls, objects=objects, wall_height=data["wall_height"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "Scene":
        return cls.from_json(json.loads(Path(path).read_text()))
