"""A scene loaded from a mesh file (glTF/GLB, PLY, OBJ) as flat arrays the ray-cast renderer reads.

Frame: world z up, metres (the file's axes converted by `sim.mesh_io`). UVs follow glTF: (0, 0) is the
top-left texel of a texture, u to the right, v down. Colours are 8-bit display values used as stored
(no sRGB/linear conversion), as the built-in procedural renderer uses its colours.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional
import numpy as np

WRAP_REPEAT, WRAP_CLAMP, WRAP_MIRROR = 0, 1, 2


@dataclass
class TexturePack:
    """Every texture of a scene in one flat (N, 3) uint8 array: texture k occupies rows offset[k] ..
    offset[k] + width[k] * height[k], row-major (top row first)."""

    data: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.uint8))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    width: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    height: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    @classmethod
    def from_images(cls, images: list[np.ndarray]) -> "TexturePack":
        """From HxWx3 uint8 images."""
        if not images:
            return cls()
        sizes = np.array([im.shape[0] * im.shape[1] for im in images], dtype=np.int64)
        return cls(data=np.concatenate([np.ascontiguousarray(im, np.uint8).reshape(-1, 3) for im in images]),
                   offset=np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64),
                   width=np.array([im.shape[1] for im in images], np.int32),
                   height=np.array([im.shape[0] for im in images], np.int32))

    def image(self, k: int) -> np.ndarray:
        """Texture k as HxWx3 uint8."""
        o, w, h = int(self.offset[k]), int(self.width[k]), int(self.height[k])
        return self.data[o:o + w * h].reshape(h, w, 3)

    def __len__(self) -> int:
        return len(self.offset)


@dataclass
class Materials:
    """Per material m: base colour factor (M, 3) in [0, 1], texture index (M,) (-1: none), wrap mode (M, 2)
    for u and v (WRAP_*), flat (M,) (unshaded: emissive, unlit or scanned with baked lighting)."""

    factor: np.ndarray
    texture: np.ndarray
    wrap: np.ndarray
    flat: np.ndarray

    @classmethod
    def plain(cls, n: int = 1) -> "Materials":
        return cls(np.ones((n, 3), np.float32), np.full(n, -1, np.int32), np.zeros((n, 2), np.int8),
                   np.zeros(n, bool))

    def __len__(self) -> int:
        return len(self.texture)


@dataclass
class MeshScene:
    """Triangles with per-vertex UV and colour, per-triangle material and instance id.

    vertices (V, 3) float32 m; triangles (T, 3) int32; uv (V, 2) float32; vertex_color (V, 3) float32 in
    [0, 1] (ones when the file has none); material (T,) int32 into `materials`; instance (T,) int32 (0:
    unlabelled); names: instance id -> name (from HM3D's semantic.txt); semantic: when the labels come on other
    triangles than the rendered ones, that labelled mesh (ray cast separately for instance ids).
    """

    vertices: np.ndarray
    triangles: np.ndarray
    uv: np.ndarray
    vertex_color: np.ndarray
    material: np.ndarray
    materials: Materials
    textures: TexturePack
    instance: np.ndarray
    names: dict[int, str] = field(default_factory=dict)
    source: str = ""
    semantic: Optional["MeshScene"] = None  # labelled triangles cast separately (HM3D semantic mesh)

    def __post_init__(self) -> None:
        n_v = len(self.vertices)
        if len(self.triangles) and (self.triangles.min() < 0 or self.triangles.max() >= n_v):
            raise ValueError(f"{self.source or 'mesh'}: triangle indices outside the {n_v} vertices")
        if not np.all(np.isfinite(self.vertices)):
            raise ValueError(f"{self.source or 'mesh'}: non-finite vertex coordinates")

    @property
    def n_triangles(self) -> int:
        return len(self.triangles)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) corners (3,) of the vertices used by triangles, metres."""
        used = self.vertices[np.unique(self.triangles)]
        return used.min(axis=0), used.max(axis=0)

    def triangle_normals(self) -> np.ndarray:
        """(T, 3) unit normals (zero for degenerate triangles), right-hand winding."""
        v = self.vertices[self.triangles].astype(np.float64)
        n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
        norm = np.linalg.norm(n, axis=1, keepdims=True)
        return np.divide(n, norm, out=np.zeros_like(n), where=norm > 0)

    def triangle_areas(self) -> np.ndarray:
        v = self.vertices[self.triangles].astype(np.float64)
        return 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)

    def transformed(self, R: np.ndarray, t=(0.0, 0.0, 0.0)) -> "MeshScene":
        """The scene with vertices p -> R p + t (R a proper rotation keeps the winding)."""
        v = self.vertices.astype(np.float64) @ np.asarray(R, float).T + np.asarray(t, float)
        semantic = self.semantic.transformed(R, t) if self.semantic is not None else None
        return replace(self, vertices=v.astype(np.float32), semantic=semantic)

    @staticmethod
    def concatenate(parts: list["MeshScene"], source: str = "") -> "MeshScene":
        """One scene from several (materials, textures and vertex indices renumbered)."""
        if not parts:
            raise ValueError(f"{source}: no triangles")
        v_off, m_off, t_off = 0, 0, 0
        tris, mats, tex_idx = [], [], []
        for p in parts:
            tris.append(p.triangles + v_off)
            mats.append(p.material + m_off)
            tex_idx.append(np.where(p.materials.texture >= 0, p.materials.texture + t_off, -1))
            v_off += len(p.vertices)
            m_off += len(p.materials)
            t_off += len(p.textures)
        images = [p.textures.image(k) for p in parts for k in range(len(p.textures))]
        names: dict[int, str] = {}
        for p in parts:
            names.update(p.names)
        return MeshScene(
            vertices=np.concatenate([p.vertices for p in parts]).astype(np.float32),
            triangles=np.concatenate(tris).astype(np.int32),
            uv=np.concatenate([p.uv for p in parts]).astype(np.float32),
            vertex_color=np.concatenate([p.vertex_color for p in parts]).astype(np.float32),
            material=np.concatenate(mats).astype(np.int32),
            materials=Materials(np.concatenate([p.materials.factor for p in parts]).astype(np.float32),
                                np.concatenate(tex_idx).astype(np.int32),
                                np.concatenate([p.materials.wrap for p in parts]).astype(np.int8),
                                np.concatenate([p.materials.flat for p in parts]).astype(bool)),
            textures=TexturePack.from_images(images),
            instance=np.concatenate([p.instance for p in parts]).astype(np.int32),
            names=names, source=source)


def sample_texture_nearest(textures: TexturePack, k: int, uv: np.ndarray,
                           wrap=(WRAP_REPEAT, WRAP_REPEAT)) -> np.ndarray:
    """(N, 3) uint8 texels of texture k at (N, 2) glTF UVs, nearest texel (the renderer's rule, vectorised)."""
    h, w = int(textures.height[k]), int(textures.width[k])
    u = wrap_coord(np.asarray(uv[:, 0], np.float64), wrap[0])
    v = wrap_coord(np.asarray(uv[:, 1], np.float64), wrap[1])
    col = np.clip(np.floor(u * w).astype(np.int64), 0, w - 1)
    row = np.clip(np.floor(v * h).astype(np.int64), 0, h - 1)
    return textures.data[textures.offset[k] + row * w + col]


def wrap_coord(x: np.ndarray, mode: int) -> np.ndarray:
    """Texture coordinate into [0, 1] by glTF's wrap mode."""
    if mode == WRAP_CLAMP:
        return np.clip(x, 0.0, 1.0)
    if mode == WRAP_MIRROR:
        f = np.mod(x, 2.0)
        return np.where(f > 1.0, 2.0 - f, f)
    return x - np.floor(x)


def semantic_ids_from_colors(colors: np.ndarray, table: dict[int, int]) -> np.ndarray:
    """(N,) instance ids of (N, 3) uint8 colours by `table` (packed 0xRRGGBB -> id); 0 where unknown."""
    packed = (colors[:, 0].astype(np.int64) << 16) | (colors[:, 1].astype(np.int64) << 8) | colors[:, 2]
    if not table:
        return np.zeros(len(colors), np.int32)
    keys = np.array(sorted(table), dtype=np.int64)
    vals = np.array([table[k] for k in keys], dtype=np.int32)
    i = np.clip(np.searchsorted(keys, packed), 0, len(keys) - 1)
    return np.where(keys[i] == packed, vals[i], 0).astype(np.int32)

