"""Mesh scene speed: load a large textured GLB (generated: a procedural house exported with sim.mesh_export,
its triangles subdivided and its textures enlarged with noise until the file is >= --mb MB), pick its floor,
compute the free space, render the first frame; then the render time per 640x480 frame with textures, against
the built-in renderer on the same house (its native boxes) in the same run.

    python bench/bench_mesh.py [--mb 50] [--seed 0] [--frames 20]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def big_glb(seed: int, megabytes: float, folder: Path) -> tuple[Path, object]:
    """(path of a GLB of at least `megabytes` MB, the procedural scene it was made from)."""
    import trimesh
    from PIL import Image

    from sim.config import SimConfig
    from sim.house import generate_house
    from sim.mesh_export import export_house_glb

    config = SimConfig()
    scene = generate_house(seed, 10, config.house, config.robot)
    small = export_house_glb(scene, folder, "small")["glb"]
    rng = np.random.default_rng(seed)
    loaded = trimesh.load(str(small), force="scene", process=False)
    texture_side, levels = 256, 1
    while True:
        out = trimesh.Scene()
        for name, geom in loaded.geometry.items():
            v, f = np.asarray(geom.vertices), np.asarray(geom.faces)
            uv = np.asarray(geom.visual.uv)
            for _ in range(levels):
                v, f, attrs = trimesh.remesh.subdivide(v, f, vertex_attributes={"uv": uv})
                uv = attrs["uv"]
            image = np.asarray(geom.visual.material.baseColorTexture.convert("RGB"))
            scale = max(1, texture_side // max(image.shape[:2]))
            image = np.kron(image, np.ones((scale, scale, 1), np.uint8))
            noise = rng.integers(-3, 4, image.shape)
            image = np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)
            material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(image),
                                                           emissiveFactor=geom.visual.material.emissiveFactor)
            out.add_geometry(trimesh.Trimesh(v, f, visual=trimesh.visual.TextureVisuals(uv=uv, material=material),
                                             process=False), geom_name=name)
        path = folder / "big.glb"
        path.write_bytes(out.export(file_type="glb"))
        size = path.stat().st_size / 1e6
        if size >= megabytes:
            return path, scene
        texture_side *= 2
        levels += 1 if levels < 4 else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=50.0, help="least GLB size, MB (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="house seed (default 0)")
    parser.add_argument("--frames", type=int, default=20, help="frames to time (default 20)")
    args = parser.parse_args()

    from mapping.frame import base_pose
    from sim.config import SimConfig
    from sim.env import SimEnv
    from sim.mesh_world import load_world

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path, scene = big_glb(args.seed, args.mb, Path(tmp))
        print(f"generated {path.name}: {path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s")
        config = SimConfig()  # the hm-eqa camera: 640x480
        t0 = time.perf_counter()
        world = load_world(path)
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        env = SimEnv(world, config)
        t_env = time.perf_counter() - t0
        rng = np.random.default_rng(args.seed)
        poses = [env.random_start(rng) for _ in range(args.frames)]
        t0 = time.perf_counter()
        env.renderer.render(base_pose(*poses[0]) @ env.T_base_cam)
        t_first = time.perf_counter() - t0
        print(world.describe())
        print(f"load (parse + decode + convert): {t_load:.2f} s; free space + renderer: {t_env:.2f} s; "
              f"first render: {t_first:.3f} s; total to the first frame {t_load + t_env + t_first:.2f} s")
        native = SimEnv(scene, config)
        for name, e in (("mesh (textured)", env), ("built-in (boxes)", native)):
            e.renderer.render(base_pose(*poses[0]) @ e.T_base_cam)  # compiled and warm
        times = {}
        for name, e in (("mesh (textured)", env), ("built-in (boxes)", native)):
            t0 = time.perf_counter()
            for pose in poses:
                e.renderer.render(base_pose(*pose) @ e.T_base_cam)
            times[name] = (time.perf_counter() - t0) / len(poses)
            print(f"{name}: {times[name] * 1e3:.1f} ms per {config.camera.width}x{config.camera.height} frame "
                  f"({e.renderer.mesh.triangles.shape[0]} triangles)")
        print(f"ratio mesh / built-in: x{times['mesh (textured)'] / times['built-in (boxes)']:.2f}")


if __name__ == "__main__":
    main()
