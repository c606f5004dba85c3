"""Mesh scene files in the built-in simulator: loading (GLB with PNG and Basis textures, PLY, OBJ), textured
ray casting, HM3D semantics, free space from the geometry, the commands that take --scene, the HM-EQA runner
and bad files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eqa.cli import main
from mapping.frame import base_pose
from sim.config import SimConfig
from sim.env import SimEnv, SimEpisode
from sim.house import generate_house
from sim.mesh_export import export_house_glb
from sim.mesh_freespace import floor_levels
from sim.mesh_io import load_mesh_scene
from sim.mesh_render import MeshRenderer
from sim.mesh_world import load_world

pytest.importorskip("trimesh")
pytest.importorskip("pygltflib")

FIXTURE = Path(__file__).parent / "data" / "basis_house" / "house.basis.glb"
SMALL = ["sim.camera.width=320", "sim.camera.height=240"]


def _house(seed: int, rooms=None):
    config = SimConfig()
    return generate_house(seed, rooms, config.house, config.robot), config


def _compare(native: SimEnv, renderer: MeshRenderer, n: int, seed: int) -> list[dict]:
    """Per seeded pose: hit masks equal, depth difference on hits (m), colour differences, ids equal."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x, y, yaw = native.random_start(rng)
        T = base_pose(x, y, yaw) @ native.T_base_cam
        a, b = native.renderer.render(T), renderer.render(T)
        hit = (a[1] > 0) & (b[1] > 0)
        diff = np.abs(a[0].astype(int) - b[0].astype(int))
        out.append({"same_hits": bool(np.array_equal(a[1] > 0, b[1] > 0)),
                    "depth": float(np.abs(a[1][hit] - b[1][hit]).max()), "rgb_mean": float(diff.mean()),
                    "rgb_off": float((diff.max(axis=-1) > 10).mean()), "ids": float((a[2] == b[2]).mean())})
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    scene, config = _house(0)
    out = tmp_path_factory.mktemp("glb")
    return scene, config, export_house_glb(scene, out, "house")


def test_exported_house_renders_the_native_depth_colours_and_ids(exported):
    scene, config, paths = exported
    mesh = load_mesh_scene(paths["glb"])
    assert len(mesh.textures) >= 2 and mesh.semantic is not None  # UV textures; labels on a separate mesh
    native = SimEnv(scene, config)
    for r in _compare(native, MeshRenderer(mesh, native.intrinsics), 5, seed=0):
        assert r["same_hits"] and r["depth"] <= 1e-3
        assert r["rgb_mean"] < 2.0 and r["rgb_off"] < 0.01
        assert r["ids"] > 0.999
    names = {scene.instance_category(i) for i in mesh.names}
    assert set(mesh.names.values()) == names


def test_free_space_from_the_mesh_matches_the_procedural_houses(exported):
    scene, config, paths = exported
    world = load_world(paths["glb"])
    assert abs(world.floor_z) < 1e-3 and abs(floor_levels(world.mesh)[0][0]) < 1e-3
    native = SimEnv(scene, config).freespace
    mesh_fs = SimEnv(world, config).freespace
    a = native.grid.cell_to_world(np.argwhere(native.navigable))
    b = mesh_fs.grid.cell_to_world(np.argwhere(mesh_fs.navigable))
    assert mesh_fs.is_navigable(a).mean() > 0.95 and native.is_navigable(b).mean() > 0.95
    # nothing navigable inside a wall or a piece of furniture taller than the floor step
    from sim.freespace import obstacle_boxes

    boxes = obstacle_boxes(scene, 0.1, config.robot.height)
    inside = ((b[:, None, 0] > boxes[:, 0]) & (b[:, None, 0] < boxes[:, 2]) & (b[:, None, 1] > boxes[:, 1])
              & (b[:, None, 1] < boxes[:, 3])).any(axis=1)
    assert not inside.any()


def test_basis_universal_textures_decode_and_render_like_the_native_renderer():
    pytest.importorskip("opengl_basisu")
    mesh = load_mesh_scene(FIXTURE)  # HM3D naming: z up, flat shading
    assert mesh.materials.flat.all() and len(mesh.textures) == 4
    lit = load_mesh_scene(FIXTURE, shading="lambert")
    scene, config = _house(2, 2)  # what tests/data/make_basis_fixture.py exported
    native = SimEnv(scene, config)
    for r in _compare(native, MeshRenderer(lit, native.intrinsics), 3, seed=1):
        assert r["same_hits"] and r["depth"] <= 1e-3 and r["ids"] > 0.999
        assert r["rgb_mean"] < 8.0  # ETC1S is lossy
    palette = lit.textures.image(0)  # KTX2 UASTC: a palette of solid 4x4 blocks decodes nearly exactly
    assert np.abs(palette[0:4, 0:4].astype(int) - palette[1, 1].astype(int)).max() <= 2


def _textured_quad(trimesh, image: np.ndarray, pbr: bool):
    """A 2 x 2 m quad at z = 0 (file frame y-up: the quad lies in x, -z) with UVs (0, 0) at world (0, 2);
    pbr: a glTF material (base colour factor 1), else an OBJ one."""
    from PIL import Image

    world = np.array([[0, 0, 0], [2, 0, 0], [2, 2, 0], [0, 2, 0]], float)
    file_xyz = np.stack([world[:, 0], world[:, 2], -world[:, 1]], axis=1)  # world -> y-up
    uv_gl = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)  # OpenGL v up: v = 1 at world y = 2
    material = (trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(image)) if pbr else
                trimesh.visual.material.SimpleMaterial(image=Image.fromarray(image)))
    visual = trimesh.visual.TextureVisuals(uv=uv_gl, material=material)
    return trimesh.Trimesh(file_xyz, [[0, 1, 2], [0, 2, 3]], visual=visual, process=False)


@pytest.mark.parametrize("suffix", [".obj", ".glb"])
def test_textures_are_sampled_at_the_hit_uv_in_obj_and_glb(tmp_path, suffix):
    import trimesh

    from mapping.frame import Intrinsics

    image = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)  # top row: red green
    path = tmp_path / f"quad{suffix}"
    _textured_quad(trimesh, image, pbr=suffix == ".glb").export(path)
    mesh = load_mesh_scene(path, shading="flat")
    renderer = MeshRenderer(mesh, Intrinsics(fx=50, fy=50, cx=49.5, cy=49.5, width=100, height=100))
    rays = np.zeros((2, 2, 6), np.float32)
    rays[..., 5] = -1.0
    rays[..., 2] = 1.0
    rays[..., 0] = [[0.5, 1.5], [0.5, 1.5]]
    rays[..., 1] = [[1.5, 1.5], [0.5, 0.5]]  # row 0 at world y = 1.5 (near v = 0: the image's top row)
    rgb, depth, _ = renderer.render_rays(rays)
    assert np.allclose(depth, 1.0)
    assert rgb.reshape(4, 3).tolist() == image.reshape(4, 3).tolist()


def test_ply_vertex_colours_are_interpolated_and_drawn_as_stored(tmp_path):
    import trimesh

    v = np.array([[0, 0, 0], [2, 0, 0], [2, 2, 0], [0, 2, 0]], float)
    colors = np.array([[200, 0, 0, 255], [200, 0, 0, 255], [0, 0, 200, 255], [0, 0, 200, 255]], np.uint8)
    trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], vertex_colors=colors, process=False).export(tmp_path / "scan.ply")
    mesh = load_mesh_scene(tmp_path / "scan.ply")  # PLY: z up, flat shading
    rays = np.zeros((1, 3, 6), np.float32)
    rays[..., 0] = 1.0
    rays[..., 1] = [0.0, 1.0, 2.0]
    rays[..., 2] = 1.0
    rays[..., 5] = -1.0
    from mapping.frame import Intrinsics

    rgb, depth, _ = MeshRenderer(mesh, Intrinsics(fx=1, fy=1, cx=0, cy=0, width=4, height=4)).render_rays(rays)
    assert np.allclose(depth, 1.0)
    assert rgb[0, 0].tolist() == [200, 0, 0] and rgb[0, 2].tolist() == [0, 0, 200]
    assert rgb[0, 1].tolist() == [100, 0, 100]  # halfway: the colours interpolated


@pytest.mark.integration
def test_explore_and_show_take_a_scene_file(exported, tmp_path, capsys):
    _, _, paths = exported
    assert main(["explore", "--scene", str(paths["glb"]), "--out", str(tmp_path / "ex"), "--no-rerun"] + SMALL) == 0
    summary = json.loads((tmp_path / "ex" / "summary.json").read_text())
    assert summary["coverage"] > 0.5 and summary["collisions"] == 0
    assert (tmp_path / "ex" / "map.png").is_file() and (tmp_path / "ex" / "episode.png").is_file()
    assert main(["sim", "show", "--scene", str(paths["glb"]), "--out", str(tmp_path / "show"), "--views", "2"]) == 0
    shown = json.loads((tmp_path / "show" / "summary.json").read_text())
    assert shown["instances"] > 10 and shown["navigable_area_m2"] > 10
    assert (tmp_path / "show" / "plan.png").is_file() and (tmp_path / "show" / "views.png").is_file()


@pytest.mark.integration
def test_a_semantic_episode_runs_on_an_exported_house_and_answers(exported, tmp_path):
    scene, _, paths = exported
    sofa = next(o for o in scene.objects if o.color is not None)
    out = tmp_path / "run"
    assert main(["run", "--scene", str(paths["glb"]), "--question", f"What colour is the {sofa.category}?",
                 "--choices", sofa.color, "zzz-other", "--out", str(out), "--no-rerun",
                 "stop.policy=fixed-budget", "agent.default_budget=3", "agent.budget_factor=0.2"] + SMALL) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["answer"] in (0, 1) and summary["decisions"] >= 1 and summary["vlm_calls"] >= 1
    assert (out / "episode.png").is_file()


def _hmeqa_scene(tmp_path: Path, scene_id: str, house_seed: int) -> Path:
    """An exported procedural house laid out as HM3D scene `scene_id` (z up, X.basis.glb), moved so that a free
    pose of it lies at the HM-EQA start pose of the scene's first question."""
    from eqa.datasets.hmeqa import load_hmeqa
    from eqa.hmeqa_driver import BUNDLED

    q = next(q for q in load_hmeqa(BUNDLED).questions if q.scene == scene_id)
    x, y, z = q.start.position
    scene, config = _house(house_seed)
    cx, cy, _ = SimEnv(scene, config).random_start(np.random.default_rng(0), clearance=0.4)
    export_house_glb(scene, tmp_path / "scenes" / scene_id, scene_id.split("-", 1)[1] + ".basis", up="z",
                     offset=(x - cx, y - cy, z))
    return tmp_path / "scenes"


@pytest.mark.integration
def test_hm_eqa_runs_its_questions_on_their_scene_files(tmp_path, capsys):
    scenes = _hmeqa_scene(tmp_path, "00004-VqCaAuuoeWk", 4)
    _hmeqa_scene(tmp_path, "00259-4J8N2Ah1a6o", 5)  # holds row 161, whose answer letter points at padding
    out = tmp_path / "bench"
    assert main(["bench", "--dataset", "hm-eqa", "--scenes", str(scenes), "--method", "semantic", "--out", str(out),
                 "stop.policy=fixed-budget", "agent.default_budget=2", "agent.budget_factor=0.1"] + SMALL) == 0
    said = capsys.readouterr().out
    assert "skipping 498 of 500 HM-EQA questions" in said and "rows [161]" in said
    summaries = {p.name: json.loads((p / "summary.json").read_text()) for p in (out / "episodes").iterdir()}
    assert sorted(summaries) == ["hmeqa-000-00004-VqCaAuuoeWk", "hmeqa-161-00259-4J8N2Ah1a6o"]
    first = summaries["hmeqa-000-00004-VqCaAuuoeWk"]
    assert first["choices"] == ["Yes, it is on", "No, it is not on"] and first["truth_letter"] == "B"
    assert first["truth"] == 0 and first["answer_letter"] in ("B", "C") and not first["answer_is_padding"]
    padded = summaries["hmeqa-161-00259-4J8N2Ah1a6o"]
    assert padded["answer_is_padding"] and padded["truth"] is None and padded["success"] is None


def test_a_start_pose_inside_an_obstacle_is_refused(exported):
    scene, config, paths = exported
    env = SimEnv(load_world(paths["glb"]), config)
    wall = scene.walls[0]
    with pytest.raises(ValueError, match="collides with the scene"):
        env.reset(SimEpisode(start=(*wall.start, 0.0)))


def test_bad_scene_files_give_clear_errors(tmp_path):
    import trimesh

    with pytest.raises(FileNotFoundError, match="not found"):
        load_mesh_scene(tmp_path / "missing.glb")
    (tmp_path / "junk.glb").write_bytes(b"this is not a glb file at all")
    with pytest.raises(ValueError, match="junk.glb"):
        load_mesh_scene(tmp_path / "junk.glb")
    (tmp_path / "scene.fbx").write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown scene format"):
        load_mesh_scene(tmp_path / "scene.fbx")
    trimesh.PointCloud(np.random.default_rng(0).random((10, 3))).export(tmp_path / "points.ply")
    with pytest.raises(ValueError, match="no triangles"):
        load_mesh_scene(tmp_path / "points.ply")
    wall = trimesh.Trimesh([[0, 0, 0], [3, 0, 0], [3, 0, 2.5], [0, 0, 2.5]], [[0, 1, 2], [0, 2, 3]], process=False)
    wall.export(tmp_path / "wall.ply")
    with pytest.raises(ValueError, match="no floor found"):
        load_world(tmp_path / "wall.ply")
    (tmp_path / "bad.semantic.txt").write_text("not hm3d\n")
    from sim.mesh_io import read_semantic_txt

    with pytest.raises(ValueError, match="not an HM3D semantic file"):
        read_semantic_txt(tmp_path / "bad.semantic.txt")
