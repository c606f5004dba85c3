"""Options shared by the commands that take a mesh scene file (`--scene FILE`): up axis, shading, floor."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_scene_file_options(parser: argparse.ArgumentParser) -> None:
    """--up, --shading, --floor-height, --floor-step (sim.mesh_world.MeshSceneConfig and the floor)."""
    from sim.mesh_io import SHADINGS, UP_AXES

    group = parser.add_argument_group("mesh scene files (--scene FILE: .glb, .gltf, .ply, .obj)")
    group.add_argument("--up", choices=UP_AXES, default="auto",
                       help="the file's up axis (default auto: z for HM3D *.basis.glb and PLY, y for glTF/OBJ)")
    group.add_argument("--shading", choices=SHADINGS, default="auto",
                       help="lambert (the built-in light) or flat (baked-in lighting; default auto: flat for HM3D "
                            "and PLY scans, and unlit or emissive glTF materials)")
    group.add_argument("--floor-height", type=float, default=None, metavar="Z",
                       help="floor height in the file's z-up frame, m (default: the detected floor with the most "
                            "area)")
    group.add_argument("--floor-step", type=float, default=0.1, metavar="M",
                       help="highest step the robot drives over, m (default 0.1)")


def scene_world(args: argparse.Namespace, path: Path):
    """The MeshWorld of scene file `path` with the options of add_scene_file_options."""
    from sim.mesh_world import MeshSceneConfig, load_world

    config = MeshSceneConfig(up=args.up, shading=args.shading, floor_step=args.floor_step)
    return load_world(path, config, floor_z=args.floor_height)


def seed_or_file(text: str) -> int | Path:
    """argparse type of `--scene`: a built-in house seed (an integer) or a mesh scene file."""
    try:
        return int(text)
    except ValueError:
        return Path(text)
