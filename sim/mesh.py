"""Triangle mesh of a scene with per-triangle instance id, colour, emissive flag and floor pattern."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.palette import CEILING_COLOR, FLOOR_STYLES, WALL_COLOR
from sim.scene import Scene

PATTERNS = {"plain": 0, "tiles": 1, "planks": 2, "carpet": 3, "runner": 4}

# 12 triangles of a unit box, vertex index = x + 2y + 4z on the corners; outward winding.
_BOX_TRIS = np.array([
    [0, 2, 1], [1, 2, 3],  # z- (bottom)
    [4, 5, 6], [5, 7, 6],  # z+ (top)
    [0, 1, 4], [1, 5, 4],  # y-
    [2, 6, 3], [3, 6, 7],  # y+
    [0, 4, 2], [2, 4, 6],  # x-
    [1, 3, 5], [3, 7, 5],  # x+
], dtype=np.int32)


@dataclass
class SceneMesh:
    """vertices (V, 3) float32 metres; triangles (T, 3) int32; per-triangle attributes."""

    vertices: np.ndarray
    triangles: np.ndarray
    instance: np.ndarray  # (T,) int32
    color: np.ndarray  # (T, 3) float32 in [0, 1]
    color_b: np.ndarray  # (T, 3) float32, second pattern colour
    emissive: np.ndarray  # (T,) bool
    pattern: np.ndarray  # (T,) int8, PATTERNS value

    def save(self, path) -> None:
        """Write every array to one compressed .npz (vertices, triangles, per-triangle instance ids, ...)."""
        np.savez_compressed(path, **{k: getattr(self, k) for k in self.__dataclass_fields__})

    @classmethod
    def load(cls, path) -> "SceneMesh":
        with np.load(path) as data:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})


class _MeshBuilder:
    def __init__(self) -> None:
        self.verts, self.tris, self.attrs = [], [], []
        self.n = 0

    def box(self, lo, hi, instance: int, rgb, emissive: bool = False) -> None:
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        corners = np.array([[hi[0] if i & 1 else lo[0], hi[1] if i & 2 else lo[1], hi[2] if i & 4 else lo[2]]
                            for i in range(8)])
        self._add(corners, _BOX_TRIS, instance, rgb, rgb, emissive, 0)

    def quad(self, x0, y0, x1, y1, z, instance, rgb, rgb_b, pattern, facing_up: bool) -> None:
        corners = np.array([[x0, y0, z], [x1, y0, z], [x0, y1, z], [x1, y1, z]])
        tris = np.array([[0, 1, 2], [1, 3, 2]] if facing_up else [[0, 2, 1], [1, 2, 3]], dtype=np.int32)
        self._add(corners, tris, instance, rgb, rgb_b, False, pattern)

    def _add(self, verts, tris, instance, rgb, rgb_b, emissive, pattern) -> None:
        self.verts.append(verts)
        self.tris.append(tris + self.n)
        self.n += len(verts)
        self.attrs.append((len(tris), instance, rgb, rgb_b, emissive, pattern))

    def build(self) -> SceneMesh:
        counts = np.array([a[0] for a in self.attrs])
        rep = lambda values: np.repeat(np.asarray(values), counts, axis=0)  # noqa: E731
        return SceneMesh(
            vertices=np.concatenate(self.verts).astype(np.float32),
            triangles=np.concatenate(self.tris).astype(np.int32),
            instance=rep([a[1] for a in self.attrs]).astype(np.int32),
            color=(rep([a[2] for a in self.attrs]) / 255.0).astype(np.float32),
            color_b=(rep([a[3] for a in self.attrs]) / 255.0).astype(np.float32),
            emissive=rep([a[4] for a in self.attrs]).astype(bool),
            pattern=rep([a[5] for a in self.attrs]).astype(np.int8),
        )


def build_mesh(scene: Scene) -> SceneMesh:
    """Floors (patterned per room kind), ceilings, walls and every object part."""
    b = _MeshBuilder()
    half = max((w.thickness for w in scene.walls), default=0.0) / 2.0
    for room in scene.rooms:
        x0, y0, x1, y1 = room.bounds()
        pattern, col_a, col_b = FLOOR_STYLES[room.kind]
        # Extend under the walls so door openings have a floor.
        b.quad(x0 - half, y0 - half, x1 + half, y1 + half, 0.0, room.floor_id, col_a, col_b, PATTERNS[pattern], True)
        b.quad(x0 - half, y0 - half, x1 + half, y1 + half, scene.wall_height, room.ceiling_id, CEILING_COLOR,
               CEILING_COLOR, 0, False)
    for wall in scene.walls:
        for lo, hi in wall.boxes():
            b.box(lo, hi, wall.instance_id, WALL_COLOR)
    for obj in scene.objects:
        for lo, hi, part in obj.part_boxes():
            b.box(lo, hi, obj.instance_id, part.rgb, part.emissive)
    return b.build()
