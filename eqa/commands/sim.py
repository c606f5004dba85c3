"""`eqa sim show`: pictures of a procedural house or a mesh scene file (plan + rendered views)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from eqa.commands.scene_file import add_scene_file_options, scene_world


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sim", help="built-in simulator tools", description="Built-in procedural house simulator.")
    sim_sub = parser.add_subparsers(dest="sim_command", metavar="SIM_COMMAND", required=True)
    show = sim_sub.add_parser("show", help="write a plan PNG, a contact sheet and the scene JSON of a house",
                              description="Generate the house for SEED and write plan.png, views.png, scene.json "
                                          "and mesh.npz (triangles with per-triangle instance ids); or, with "
                                          "--scene FILE, load a mesh scene file and write plan.png (free space), "
                                          "views.png and summary.json.")
    show.add_argument("--seed", type=int, default=0, help="house seed (default 0)")
    show.add_argument("--scene", type=Path, default=None, metavar="FILE",
                      help="a mesh scene file (.glb/.gltf incl. HM3D *.basis.glb, .ply, .obj) instead of a house")
    show.add_argument("--rooms", type=int, default=None, help="number of rooms (default: drawn from the seed)")
    show.add_argument("--out", type=Path, required=True, help="output folder")
    show.add_argument("--config", default="sim", help="simulator config YAML (default configs/sim.yaml)")
    show.add_argument("--views", type=int, default=4, help="rendered views in the contact sheet")
    show.add_argument("overrides", nargs="*", help="config overrides like camera.hfov_deg=90")
    add_scene_file_options(show)
    show.set_defaults(func=run_show)
    export = sim_sub.add_parser("export", help="export a house as textured GLB files laid out as an HM3D scene",
                                description="Write OUT/NAME.glb (textured, glTF y-up), OUT/NAME.semantic.glb and "
                                            "OUT/NAME.semantic.txt (HM3D-style instance labels) of house SEED.")
    export.add_argument("--seed", type=int, default=0, help="house seed (default 0)")
    export.add_argument("--rooms", type=int, default=None, help="number of rooms (default: drawn from the seed)")
    export.add_argument("--out", type=Path, required=True, help="output folder")
    export.add_argument("--name", default=None, help="file name stem (default house<SEED>)")
    export.add_argument("--config", default="sim", help="simulator config YAML (default configs/sim.yaml)")
    export.set_defaults(func=run_export)


def run_show(args: argparse.Namespace) -> int:
    from eqa.config import load_config
    from sim.config import SimConfig
    from sim.env import SimEnv
    from sim.show import contact_sheet, plan_png

    config = load_config(SimConfig, args.config, args.overrides)
    if args.scene is not None:
        return show_scene_file(args, config)
    env = SimEnv.from_seed(args.seed, config, n_rooms=args.rooms)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env.scene.save(out / "scene.json")
    env.renderer.mesh.save(out / "mesh.npz")
    plan_png(env.scene, out / "plan.png")
    poses = contact_sheet(env, out / "views.png", n_views=args.views, seed=args.seed)
    summary = {"seed": args.seed, "rooms": [r.kind for r in env.scene.rooms], "objects": len(env.scene.objects),
               "floor_area_m2": round(env.scene.floor_area(), 2), "view_poses": poses}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"house {args.seed}: {len(env.scene.rooms)} rooms ({', '.join(summary['rooms'])}), "
          f"{summary['objects']} objects, {summary['floor_area_m2']} m^2")
    for name in ("plan.png", "views.png", "scene.json", "mesh.npz"):
        print(f"  wrote {out / name}")
    return 0


def show_scene_file(args: argparse.Namespace, config) -> int:
    """`eqa sim show --scene FILE`: plan.png, views.png and summary.json of a mesh scene file."""
    from sim.env import SimEnv
    from sim.mesh_freespace import floor_levels
    from sim.mesh_show import mesh_contact_sheet, mesh_plan_png

    world = scene_world(args, args.scene)
    env = SimEnv(world, config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fs = env.freespace
    levels = [(round(h + world.floor_z, 3), round(a, 1)) for h, a in floor_levels(world.mesh)]
    mesh_plan_png(env, out / "plan.png", world.describe())
    poses = mesh_contact_sheet(env, out / "views.png", n_views=args.views, seed=args.seed)
    summary = {"scene": str(args.scene), "triangles": world.mesh.n_triangles, "textures": len(world.mesh.textures),
               "instances": len(world.mesh.names), "floor_z": round(world.floor_z, 4), "floors_z_area_m2": levels,
               "floor_area_m2": round(world.floor_area(fs), 2),
               "navigable_area_m2": round(float(fs.navigable.sum()) * fs.grid.resolution ** 2, 2),
               "view_poses": poses}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(world.describe())
    print(f"  floors (height m, area m^2): {levels}; navigable {summary['navigable_area_m2']} m^2")
    for name in ("plan.png", "views.png", "summary.json"):
        print(f"  wrote {out / name}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from eqa.config import load_config
    from sim.config import SimConfig
    from sim.house import generate_house
    from sim.mesh_export import export_house_glb

    config = load_config(SimConfig, args.config)
    scene = generate_house(args.seed, args.rooms, config.house, config.robot)
    paths = export_house_glb(scene, args.out, args.name or f"house{args.seed}")
    for path in paths.values():
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0
