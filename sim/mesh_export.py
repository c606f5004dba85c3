"""Export a procedural house as textured GLB files laid out as an HM3D scene (written with trimesh):

- `<name>.glb`: the rendered mesh, glTF's y-up axes. Part colours come from a palette texture (each colour a
  4x4-texel block the part's UVs point at); patterned floors from small repeating textures whose UVs are the
  world x, y over the pattern's period; emissive parts (lamps and screens that are on) have an emissive
  material (drawn unshaded, as the built-in renderer draws them).
- `<name>.semantic.glb` + `<name>.semantic.txt`: HM3D-style instance labels (a colour per instance id,
  painted into a texture; the text file maps colours to ids, names and rooms).

Loaded back with `sim.mesh_io.load_mesh_scene` it renders what the built-in renderer renders.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.habitat_frame import world_to_habitat_point
from sim.mesh import PATTERNS, SceneMesh, build_mesh
from sim.mesh_io import HM3D_SEMANTIC_HEADER
from sim.scene import Scene

BLOCK = 4  # texels per palette colour side
# pattern -> (texture period in metres along x and y, texture size in texels)
_PERIODS = {PATTERNS["tiles"]: (0.8, 0.8, 2), PATTERNS["planks"]: (1.0, 0.36, 2), PATTERNS["runner"]: (0.6, 0.6, 96)}


def _pattern_texture(pattern: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One period of a floor pattern (sim.render's rule) as an NxNx3 uint8 image, texel centres sampled."""
    _, _, n = _PERIODS[pattern]
    c = (np.arange(n) + 0.5) / n
    u, v = np.meshgrid(c, c)  # u along x (columns), v along y (rows)
    if pattern == PATTERNS["tiles"]:
        use_b = (np.floor(u * 2) + np.floor(v * 2)) % 2 != 0
    elif pattern == PATTERNS["planks"]:
        use_b = np.floor(v * 2) % 2 != 0
    else:
        use_b = np.floor((u + v) * 2) % 2 != 0
    return np.where(use_b[..., None], b, a).astype(np.uint8)


def _palette(colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image, (N, 2) UV of each colour's block centre) of a palette of (N, 3) uint8 colours."""
    n = len(colors)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    image = np.zeros((rows * BLOCK, cols * BLOCK, 3), np.uint8)
    k = np.arange(n)
    r, c = k // cols, k % cols
    for i in range(n):  # one block per colour (a few hundred), not per texel
        image[r[i] * BLOCK:(r[i] + 1) * BLOCK, c[i] * BLOCK:(c[i] + 1) * BLOCK] = colors[i]
    uv = np.stack([(c + 0.5) / cols, (r + 0.5) / rows], axis=1)
    return image, uv


def _triangle_groups(m: SceneMesh) -> list[tuple[str, np.ndarray]]:
    """(material key, triangle indices): palette (lit), palette (emissive), one per floor pattern and colours."""
    textured = np.isin(m.pattern, list(_PERIODS))  # "carpet" is drawn plain
    groups = [("palette", np.nonzero(~textured & ~m.emissive)[0]),
              ("emissive", np.nonzero(~textured & m.emissive)[0])]
    patterned = np.nonzero(textured)[0]
    if len(patterned):
        keys = np.concatenate([m.pattern[patterned, None].astype(np.float32), m.color[patterned],
                               m.color_b[patterned]], axis=1)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        for g in range(len(uniq)):
            groups.append((f"floor{g}", patterned[inv.ravel() == g]))
    return [(k, t) for k, t in groups if len(t)]


def _file_frame(vertices: np.ndarray, up: str, offset) -> np.ndarray:
    """World (z-up) vertices moved by `offset` (m) in the file's axes: glTF's y-up, or z-up as HM3D stores."""
    moved = np.asarray(vertices, np.float64) + np.asarray(offset, np.float64)
    return world_to_habitat_point(moved) if up == "y" else moved


def _geometry(m: SceneMesh, tris: np.ndarray, key: str, palette_image, color_uv, up: str, offset):
    """A trimesh geometry of triangles `tris` (own vertices, in the file's frame) with its textured material."""
    import trimesh
    from PIL import Image

    corners = m.triangles[tris]
    used, inverse = np.unique(corners, return_inverse=True)
    faces = inverse.reshape(-1, 3)
    vertices = m.vertices[used].astype(np.float64)
    if key in ("palette", "emissive"):
        rgb = np.rint(m.color * 255).astype(np.uint8)
        vertex_tri = np.zeros(len(used), np.int64)
        vertex_tri[faces.ravel()] = np.repeat(tris, 3)  # every triangle of a part's vertex has the part's colour
        uv = color_uv(rgb[vertex_tri])
        image = palette_image
    else:
        t0 = tris[0]
        pattern = int(m.pattern[t0])
        px, py, _ = _PERIODS[pattern]
        image = _pattern_texture(pattern, np.rint(m.color[t0] * 255), np.rint(m.color_b[t0] * 255))
        uv = np.stack([vertices[:, 0] / px, vertices[:, 1] / py], axis=1)
    material = trimesh.visual.material.PBRMaterial(
        name=key, baseColorTexture=Image.fromarray(image), metallicFactor=0.0, roughnessFactor=1.0,
        emissiveFactor=[1.0, 1.0, 1.0] if key == "emissive" else None, doubleSided=True)
    uv_gl = np.stack([uv[:, 0], 1.0 - uv[:, 1]], axis=1)  # trimesh keeps OpenGL's v up
    visual = trimesh.visual.TextureVisuals(uv=uv_gl, material=material)
    return trimesh.Trimesh(_file_frame(vertices, up, offset), faces, visual=visual, process=False)


def export_house_glb(scene: Scene, out_dir: str | Path, name: str = "house", up: str = "y",
                     offset=(0.0, 0.0, 0.0)) -> dict[str, Path]:
    """Write `<name>.glb`, `<name>.semantic.glb` and `<name>.semantic.txt` of `scene` into out_dir; returns
    their paths by kind ("glb", "semantic_glb", "semantic_txt"). up: the file's up axis, "y" (glTF) or "z" (as
    HM3D stores its scenes; name the file `<hash>.basis` for HM3D's layout); offset: world (x, y, z) metres
    added to every vertex (e.g. to put the house where a dataset's start pose is)."""
    if up not in ("y", "z"):
        raise ValueError(f"up must be 'y' or 'z', got {up!r}")
    import trimesh

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    m = build_mesh(scene)
    rgb = np.rint(m.color * 255).astype(np.uint8)
    colors = np.unique(rgb, axis=0)
    palette_image, palette_uv = _palette(colors)

    def color_uv(c: np.ndarray) -> np.ndarray:
        index = {tuple(x): i for i, x in enumerate(colors.tolist())}
        return palette_uv[[index[tuple(x)] for x in c.tolist()]]

    render = trimesh.Scene()
    for key, tris in _triangle_groups(m):
        render.add_geometry(_geometry(m, tris, key, palette_image, color_uv, up, offset), geom_name=key)
    stem = name[: -len(".basis")] if name.endswith(".basis") else name  # HM3D: X.basis.glb beside X.semantic.*
    paths = {"glb": out_dir / f"{name}.glb", "semantic_glb": out_dir / f"{stem}.semantic.glb",
             "semantic_txt": out_dir / f"{stem}.semantic.txt"}
    paths["glb"].write_bytes(render.export(file_type="glb"))
    _export_semantics(scene, m, paths["semantic_glb"], paths["semantic_txt"], up, offset)
    return paths


def instance_colors(ids: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 distinct colours of distinct instance ids (a multiplicative hash, collisions stepped)."""
    taken: set[int] = set()
    out = np.zeros((len(ids), 3), np.uint8)
    for i, instance in enumerate(ids.tolist()):
        code = (int(instance) * 2654435761) & 0xFFFFFF
        while code in taken or code == 0:
            code = (code + 0x010101) & 0xFFFFFF
        taken.add(code)
        out[i] = (code >> 16, (code >> 8) & 0xFF, code & 0xFF)
    return out


def _export_semantics(scene: Scene, m: SceneMesh, glb: Path, txt: Path, up: str, offset) -> None:
    import trimesh
    from PIL import Image

    ids = np.unique(m.instance)
    colors = instance_colors(ids)
    image, uv_of = _palette(colors)
    slot = {int(i): k for k, i in enumerate(ids.tolist())}
    vertex_id = np.zeros(len(m.vertices), np.int64)
    vertex_id[m.triangles.ravel()] = np.repeat(m.instance, 3)
    uv = uv_of[[slot[int(i)] for i in vertex_id.tolist()]]
    material = trimesh.visual.material.PBRMaterial(name="semantic", baseColorTexture=Image.fromarray(image))
    visual = trimesh.visual.TextureVisuals(uv=np.stack([uv[:, 0], 1.0 - uv[:, 1]], axis=1), material=material)
    mesh = trimesh.Trimesh(_file_frame(m.vertices, up, offset), m.triangles, visual=visual, process=False)
    glb.write_bytes(trimesh.Scene(mesh).export(file_type="glb"))
    rooms = {r.floor_id: r.room_id for r in scene.rooms} | {r.ceiling_id: r.room_id for r in scene.rooms}
    lines = [HM3D_SEMANTIC_HEADER]
    for instance, color in zip(ids.tolist(), colors.tolist()):
        obj = scene.object_by_id(instance)
        region = obj.room_id if obj is not None and obj.room_id is not None else rooms.get(instance, -1)
        hexcode = "".join(f"{c:02X}" for c in color)
        lines.append(f'{instance},{hexcode},"{scene.instance_category(instance)}",{region}')
    txt.write_text("\n".join(lines) + "\n", encoding="utf-8")
