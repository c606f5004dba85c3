"""`eqa sim show`: pictures of a procedural house (plan + rendered views)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sim", help="built-in simulator tools", description="Built-in procedural house simulator.")
    sim_sub = parser.add_subparsers(dest="sim_command", metavar="SIM_COMMAND", required=True)
    show = sim_sub.add_parser("show", help="write a plan PNG, a contact sheet and the scene JSON of a house",
                              description="Generate the house for SEED and write plan.png, views.png, scene.json "
                                          "and mesh.npz (triangles with per-triangle instance ids).")
    show.add_argument("--seed", type=int, default=0, help="house seed (default 0)")
    show.add_argument("--rooms", type=int, default=None, help="number of rooms (default: drawn from the seed)")
    show.add_argument("--out", type=Path, required=True, help="output folder")
    show.add_argument("--config", default="sim", help="simulator config YAML (default configs/sim.yaml)")
    show.add_argument("--views", type=int, default=4, help="rendered views in the contact sheet")
    show.add_argument("overrides", nargs="*", help="config overrides like camera.hfov_deg=90")
    show.set_defaults(func=run_show)


def run_show(args: argparse.Namespace) -> int:
    from eqa.config import load_config
    from sim.config import SimConfig
    from sim.env import SimEnv
    from sim.show import contact_sheet, plan_png

    config = load_config(SimConfig, args.config, args.overrides)
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
