"""Load a scene mesh file into a `MeshScene` (world z up, metres).

Formats: glTF 2.0 / GLB (read with pygltflib; textures PNG, JPEG or Basis Universal: HM3D's `*.basis.glb`),
PLY with vertex colours (ScanNet / Replica style) and OBJ with its MTL textures (both read with trimesh).

Up axis (`up`): "y" (the glTF convention; the file's y-up frame is turned to z up as Habitat's frame is, by
`sim.habitat_frame`), "z" (used as stored) or "auto": z for HM3D's `*.basis.glb` / `*.semantic.glb` (stored
z-up; Habitat's HM3D config turns them to its y-up frame) and PLY, y for other glTF/GLB and OBJ.

Shading (`shading`): "lambert" (the built-in renderer's light), "flat" (colours as stored: scans whose
lighting is baked into their textures or vertex colours) or "auto": flat for HM3D files and PLY scans,
and for unlit (KHR_materials_unlit) or emissive glTF materials; lambert otherwise.

HM3D semantics: beside `X.basis.glb` (or `X.glb`), `X.semantic.glb` + `X.semantic.txt` give instance ids and
names: each semantic triangle takes the id whose colour (semantic.txt) its texture shows at the triangle's
centre.
"""
from __future__ import annotations

import base64
import csv
from pathlib import Path
from typing import Optional

import numpy as np

from mapping.frame import quaternion_matrix
from sim.habitat_frame import R_WORLD_HABITAT
from sim.mesh_scene import (WRAP_CLAMP, WRAP_MIRROR, WRAP_REPEAT, Materials, MeshScene, TexturePack,
                            sample_texture_nearest, semantic_ids_from_colors)
from sim.textures import decode_image

SUFFIXES = (".glb", ".gltf", ".ply", ".obj")
UP_AXES = ("auto", "y", "z")
SHADINGS = ("auto", "lambert", "flat")
HM3D_SEMANTIC_HEADER = "HM3D Semantic Annotations"

_COMPONENT = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_N_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_WRAP = {10497: WRAP_REPEAT, 33071: WRAP_CLAMP, 33648: WRAP_MIRROR}
_BASIS_EXTENSIONS = ("KHR_texture_basisu", "GOOGLE_texture_basis")


def is_hm3d_file(path: Path) -> bool:
    return path.name.lower().endswith((".basis.glb", ".semantic.glb"))


def resolve_up(path: Path, up: str) -> str:
    """The up axis ("y" or "z") of a scene file for the `up` setting (see the module docstring)."""
    if up not in UP_AXES:
        raise ValueError(f"scene up axis must be one of {UP_AXES}, got {up!r}")
    if up != "auto":
        return up
    if is_hm3d_file(path) or path.suffix.lower() == ".ply":
        return "z"
    return "y"


def load_mesh_scene(path: str | Path, up: str = "auto", shading: str = "auto") -> MeshScene:
    """The scene of a mesh file, z up; HM3D semantic files beside it label its triangles (module docstring).
    ValueError (naming the file) for an unknown format, an unreadable file or one without triangles."""
    path = Path(path)
    if shading not in SHADINGS:
        raise ValueError(f"scene shading must be one of {SHADINGS}, got {shading!r}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unknown scene format {suffix!r}; expected one of {SUFFIXES}")
    if not path.is_file():
        raise FileNotFoundError(f"scene file {path} not found")
    flat_all = shading == "flat" or (shading == "auto" and (is_hm3d_file(path) or suffix == ".ply"))
    lambert_all = shading == "lambert"
    try:
        if suffix in (".glb", ".gltf"):
            scene = _load_gltf(path, flat_all, lambert_all)
        else:
            scene = _load_trimesh(path, flat_all)
    except (ValueError, FileNotFoundError, ImportError):
        raise
    except Exception as err:  # a malformed file raises anything from the parsers
        raise ValueError(f"{path}: cannot read the scene file ({type(err).__name__}: {err})") from None
    if scene.n_triangles == 0:
        raise ValueError(f"{path}: the file has no triangles")
    axis = resolve_up(path, up)
    if axis == "y":
        scene = scene.transformed(R_WORLD_HABITAT)
    semantic = semantic_files(path)
    if semantic is not None:
        scene = attach_semantics(scene, *semantic, up=axis)
    return scene


# ---- HM3D semantics ----

def semantic_files(path: Path) -> Optional[tuple[Path, Path]]:
    """(X.semantic.glb, X.semantic.txt) beside X.basis.glb / X.glb when both exist, else None."""
    name = path.name
    for tail in (".basis.glb", ".glb", ".gltf"):
        if name.lower().endswith(tail) and not name.lower().endswith(".semantic.glb"):
            stem = path.with_name(name[: -len(tail)])
            glb, txt = stem.with_name(stem.name + ".semantic.glb"), stem.with_name(stem.name + ".semantic.txt")
            return (glb, txt) if glb.is_file() and txt.is_file() else None
    return None


def read_semantic_txt(path: Path) -> tuple[dict[int, int], dict[int, str]]:
    """HM3D semantic.txt: (packed colour 0xRRGGBB -> instance id, instance id -> name). Lines after the header
    are `id,RRGGBB,"name",region`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != HM3D_SEMANTIC_HEADER:
        raise ValueError(f"{path}: not an HM3D semantic file (first line must be {HM3D_SEMANTIC_HEADER!r})")
    colors: dict[int, int] = {}
    names: dict[int, str] = {}
    for n, row in enumerate(csv.reader(lines[1:]), start=2):
        if not row:
            continue
        if len(row) < 3:
            raise ValueError(f"{path}:{n}: expected id,RRGGBB,\"name\",region, got {row!r}")
        try:
            instance, color = int(row[0]), int(row[1], 16)
        except ValueError:
            raise ValueError(f"{path}:{n}: id must be an integer and colour 6 hex digits, got {row[:2]!r}") from None
        colors[color] = instance
        names[instance] = row[2]
    return colors, names


def attach_semantics(scene: MeshScene, glb: Path, txt: Path, up: str) -> MeshScene:
    """`scene` labelled from HM3D semantic files whose mesh has the up axis `up` ("y" or "z"): per-triangle ids
    on the scene itself when the semantic mesh has the same triangles, else the semantic mesh rides along
    (`scene.semantic`) for a second ray cast."""
    colors, names = read_semantic_txt(txt)
    sem = _semantic_mesh(glb, up)
    sem.instance = triangle_ids(sem, colors)
    sem.names = names
    same = (len(sem.triangles) == len(scene.triangles) and len(sem.vertices) == len(scene.vertices)
            and np.array_equal(sem.triangles, scene.triangles)
            and np.allclose(sem.vertices, scene.vertices, atol=1e-5))
    scene.names = names
    if same:
        scene.instance = sem.instance
    else:
        scene.semantic = sem
    return scene


def _semantic_mesh(glb: Path, up: str) -> MeshScene:
    sem = _load_gltf(glb, flat_all=True, lambert_all=False)
    if sem.n_triangles == 0:
        raise ValueError(f"{glb}: the semantic file has no triangles")
    return sem.transformed(R_WORLD_HABITAT) if up == "y" else sem


def triangle_ids(sem: MeshScene, colors: dict[int, int]) -> np.ndarray:
    """(T,) instance id of each triangle: the colour its material shows at the triangle's UV centre (texture),
    else its vertex colour, looked up in `colors`."""
    tri = sem.triangles
    rgb = np.rint(sem.vertex_color[tri].mean(axis=1) * sem.materials.factor[sem.material] * 255)
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    uv_centre = sem.uv[tri].mean(axis=1)
    for m in range(len(sem.materials)):
        k = int(sem.materials.texture[m])
        pick = sem.material == m
        if k >= 0 and pick.any():
            rgb[pick] = sample_texture_nearest(sem.textures, k, uv_centre[pick], tuple(sem.materials.wrap[m]))
    return semantic_ids_from_colors(rgb, colors)


# ---- glTF / GLB ----

def _buffers(gltf, path: Path) -> list[bytes]:
    out = []
    for i, buf in enumerate(gltf.buffers):
        if buf.uri is None:
            blob = gltf.binary_blob()
            if blob is None:
                raise ValueError(f"{path}: buffer {i} has no data")
            out.append(bytes(blob))
        elif buf.uri.startswith("data:"):
            out.append(base64.b64decode(buf.uri.split(",", 1)[1]))
        else:
            file = path.parent / buf.uri
            if not file.is_file():
                raise FileNotFoundError(f"{path}: buffer file {file} not found")
            out.append(file.read_bytes())
    return out


def _accessor(gltf, buffers: list[bytes], index: int) -> np.ndarray:
    acc = gltf.accessors[index]
    dtype = np.dtype(_COMPONENT[acc.componentType])
    n = _N_COMPONENTS[acc.type]
    if acc.bufferView is None:
        arr = np.zeros((acc.count, n), dtype)
    else:
        view = gltf.bufferViews[acc.bufferView]
        data = buffers[view.buffer]
        start = (view.byteOffset or 0) + (acc.byteOffset or 0)
        stride = view.byteStride or dtype.itemsize * n
        if acc.count and start + stride * (acc.count - 1) + dtype.itemsize * n > len(data):
            raise ValueError(f"accessor {index} reads past the end of buffer {view.buffer}")
        arr = np.ndarray((acc.count, n), dtype, buffer=data, offset=start, strides=(stride, dtype.itemsize)).copy()
    if acc.sparse is not None:
        raise ValueError(f"accessor {index} is sparse (not supported)")
    if acc.normalized and dtype.kind in "iu":
        arr = np.maximum(arr / np.iinfo(dtype).max, -1.0)
    return arr


def _node_matrix(node) -> np.ndarray:
    if node.matrix is not None:
        return np.asarray(node.matrix, dtype=float).reshape(4, 4).T  # column-major in the file
    T = np.eye(4)
    if node.rotation is not None:
        x, y, z, w = node.rotation
        T[:3, :3] = quaternion_matrix(x, y, z, w)
    if node.scale is not None:
        T[:3, :3] = T[:3, :3] * np.asarray(node.scale, float)
    if node.translation is not None:
        T[:3, 3] = node.translation
    return T


def _triangle_indices(mode: int, idx: np.ndarray) -> np.ndarray:
    if mode == 4:
        return idx[: len(idx) // 3 * 3].reshape(-1, 3)
    if mode == 5:  # strip: alternate the winding
        k = np.arange(len(idx) - 2)
        tris = np.stack([idx[k], idx[k + 1], idx[k + 2]], axis=1)
        tris[1::2] = tris[1::2][:, [1, 0, 2]]
        return tris
    if mode == 6:  # fan
        k = np.arange(1, len(idx) - 1)
        return np.stack([np.full_like(k, idx[0]), idx[k], idx[k + 1]], axis=1)
    return np.zeros((0, 3), np.int64)  # points and lines carry no surface


def _load_gltf(path: Path, flat_all: bool, lambert_all: bool) -> MeshScene:
    import pygltflib

    gltf = pygltflib.GLTF2().load(str(path))
    if gltf is None:
        raise ValueError(f"{path}: not a glTF/GLB file")
    buffers = _buffers(gltf, path)
    textures, texture_of_image = _gltf_textures(gltf, buffers, path)
    materials = _gltf_materials(gltf, texture_of_image, flat_all, lambert_all)
    default_material = len(materials.texture)  # primitives without a material
    materials = Materials(np.vstack([materials.factor, np.ones((1, 3), np.float32)]),
                          np.append(materials.texture, -1).astype(np.int32),
                          np.vstack([materials.wrap, np.zeros((1, 2), np.int8)]),
                          np.append(materials.flat, flat_all))
    parts = []
    scene_index = gltf.scene if gltf.scene is not None else 0
    roots = gltf.scenes[scene_index].nodes if gltf.scenes else range(len(gltf.nodes))
    stack = [(int(n), np.eye(4)) for n in roots]
    while stack:
        index, parent = stack.pop()
        node = gltf.nodes[index]
        T = parent @ _node_matrix(node)
        stack.extend((int(c), T) for c in (node.children or []))
        if node.mesh is None:
            continue
        for prim in gltf.meshes[node.mesh].primitives:
            part = _primitive(gltf, buffers, prim, T, default_material)
            if part is not None:
                parts.append(part)
    if not parts:
        raise ValueError(f"{path}: the file has no triangles")
    v = np.concatenate([p[0] for p in parts])
    offsets = np.cumsum([0] + [len(p[0]) for p in parts[:-1]])
    return MeshScene(vertices=v.astype(np.float32),
                     triangles=np.concatenate([p[1] + o for p, o in zip(parts, offsets)]).astype(np.int32),
                     uv=np.concatenate([p[2] for p in parts]).astype(np.float32),
                     vertex_color=np.concatenate([p[3] for p in parts]).astype(np.float32),
                     material=np.concatenate([np.full(len(p[1]), p[4], np.int32) for p in parts]),
                     materials=materials, textures=textures,
                     instance=np.zeros(sum(len(p[1]) for p in parts), np.int32), source=str(path))


def _primitive(gltf, buffers, prim, T, default_material):
    mode = 4 if prim.mode is None else prim.mode
    attrs = prim.attributes
    if attrs.POSITION is None:
        return None
    pos = _accessor(gltf, buffers, attrs.POSITION).astype(np.float64)
    idx = (_accessor(gltf, buffers, prim.indices).ravel().astype(np.int64) if prim.indices is not None
           else np.arange(len(pos)))
    tris = _triangle_indices(mode, idx)
    if not len(tris):
        return None
    if tris.max() >= len(pos):
        raise ValueError("a primitive's indices point past its vertices")
    R, t = T[:3, :3], T[:3, 3]
    v = pos @ R.T + t
    if np.linalg.det(R) < 0:  # a mirroring node flips the winding
        tris = tris[:, [0, 2, 1]]
    uv = _accessor(gltf, buffers, attrs.TEXCOORD_0)[:, :2] if attrs.TEXCOORD_0 is not None else np.zeros((len(v), 2))
    col = (_accessor(gltf, buffers, attrs.COLOR_0)[:, :3].astype(np.float64) if attrs.COLOR_0 is not None
           else np.ones((len(v), 3)))
    material = default_material if prim.material is None else int(prim.material)
    return v, tris, uv, col, material


def _image_bytes(gltf, buffers, image, path: Path) -> bytes:
    if image.bufferView is not None:
        view = gltf.bufferViews[image.bufferView]
        start = view.byteOffset or 0
        return bytes(buffers[view.buffer][start:start + view.byteLength])
    if image.uri and image.uri.startswith("data:"):
        return base64.b64decode(image.uri.split(",", 1)[1])
    file = path.parent / (image.uri or "")
    if not file.is_file():
        raise FileNotFoundError(f"{path}: texture file {file} not found")
    return file.read_bytes()


def _gltf_textures(gltf, buffers, path: Path) -> tuple[TexturePack, dict[int, int]]:
    """Decoded images of the file (each once) and texture index -> image index in the pack."""
    images, image_slot, texture_of = [], {}, {}
    for t_index, tex in enumerate(gltf.textures):
        source = tex.source
        for ext in _BASIS_EXTENSIONS:
            if tex.extensions and ext in tex.extensions:
                source = tex.extensions[ext].get("source", source)
        if source is None:
            continue
        if source not in image_slot:
            data = _image_bytes(gltf, buffers, gltf.images[source], path)
            images.append(decode_image(data, f"{path} image {source}"))
            image_slot[source] = len(images) - 1
        texture_of[t_index] = image_slot[source]
    return TexturePack.from_images(images), texture_of


def _gltf_materials(gltf, texture_of: dict[int, int], flat_all: bool, lambert_all: bool) -> Materials:
    n = len(gltf.materials)
    mats = Materials.plain(n)
    for m, mat in enumerate(gltf.materials):
        pbr = mat.pbrMetallicRoughness
        if pbr is not None and pbr.baseColorFactor is not None:
            mats.factor[m] = np.asarray(pbr.baseColorFactor[:3], np.float32)
        if pbr is not None and pbr.baseColorTexture is not None:
            t = pbr.baseColorTexture.index
            mats.texture[m] = texture_of.get(t, -1)
            sampler = gltf.textures[t].sampler
            if sampler is not None:
                s = gltf.samplers[sampler]
                mats.wrap[m] = (_WRAP.get(s.wrapS or 10497, WRAP_REPEAT), _WRAP.get(s.wrapT or 10497, WRAP_REPEAT))
        unlit = bool(mat.extensions and "KHR_materials_unlit" in mat.extensions)
        emissive = mat.emissiveFactor is not None and max(mat.emissiveFactor) > 0
        mats.flat[m] = flat_all or (not lambert_all and (unlit or emissive))
    return mats


# ---- PLY / OBJ (trimesh) ----

def _load_trimesh(path: Path, flat_all: bool) -> MeshScene:
    import trimesh

    loaded = trimesh.load(str(path), force="scene", process=False)
    parts = []
    for name, geom in loaded.geometry.items():
        if not isinstance(geom, trimesh.Trimesh) or not len(geom.faces):
            continue
        for node in loaded.graph.geometry_nodes.get(name, [name]):
            T, _ = loaded.graph.get(node)
            parts.append(_trimesh_part(geom, np.asarray(T, float), flat_all, f"{path} {name}"))
    if not parts:
        raise ValueError(f"{path}: the file has no triangles")
    return MeshScene.concatenate(parts, source=str(path))


def _trimesh_part(geom, T: np.ndarray, flat: bool, where: str) -> MeshScene:
    v = np.asarray(geom.vertices, float) @ T[:3, :3].T + T[:3, 3]
    faces = np.asarray(geom.faces, np.int64)
    n = len(v)
    uv, color = np.zeros((n, 2), np.float32), np.ones((n, 3), np.float32)
    materials, images = Materials.plain(1), []
    materials.flat[:] = flat
    visual = geom.visual
    if visual.kind == "vertex":
        color = np.asarray(visual.vertex_colors, np.float32)[:, :3] / 255.0
    elif visual.kind == "face":  # per-face colours become per-corner ones: split the vertices
        face_rgb = np.asarray(visual.face_colors, np.float32)[:, :3] / 255.0
        v, faces = v[faces].reshape(-1, 3), np.arange(len(faces) * 3).reshape(-1, 3)
        uv, color = np.zeros((len(v), 2), np.float32), np.repeat(face_rgb, 3, axis=0)
    elif visual.kind == "texture":
        mat = visual.material
        image = getattr(mat, "image", None) or getattr(mat, "baseColorTexture", None)
        if visual.uv is not None and image is not None:
            uv = np.asarray(visual.uv, np.float32)[:, :2].copy()
            uv[:, 1] = 1.0 - uv[:, 1]  # trimesh keeps OpenGL's v up; ours is glTF's v down
            images.append(np.asarray(image.convert("RGB"), np.uint8))
            materials.texture[0] = 0
        base = getattr(mat, "diffuse", None)
        if base is None:
            base = getattr(mat, "baseColorFactor", None)
        if base is not None and materials.texture[0] < 0:  # a texture gives the colour (OBJ's Kd beside map_Kd
            # is often a placeholder, e.g. trimesh's 0.4 grey)
            materials.factor[0] = np.asarray(base, np.float32)[:3] / (255.0 if np.max(base) > 1 else 1.0)
    if np.linalg.det(T[:3, :3]) < 0:
        faces = faces[:, [0, 2, 1]]
    return MeshScene(vertices=v.astype(np.float32), triangles=faces.astype(np.int32), uv=uv,
                     vertex_color=color, material=np.zeros(len(faces), np.int32), materials=materials,
                     textures=TexturePack.from_images(images), instance=np.zeros(len(faces), np.int32),
                     source=where)
