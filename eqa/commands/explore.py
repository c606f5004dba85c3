"""`eqa explore`: one frontier-based exploration episode in a built-in house or a mesh scene file."""
from __future__ import annotations

import argparse
from pathlib import Path

from eqa.commands.scene_file import add_scene_file_options, scene_world


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("explore", help="run one frontier-exploration episode in a built-in house",
                            description="Explore the built-in house SEED (or the mesh scene --scene FILE) with "
                                        "frontier-based exploration and write record.jsonl, summary.json (coverage of "
                                        "the reachable floor, collisions), map.png and episode.rrd to OUT.")
    parser.add_argument("--seed", type=int, default=0, help="house and start seed (default 0)")
    parser.add_argument("--rooms", type=int, default=None, help="room count (default: drawn from the seed)")
    parser.add_argument("--scene", type=Path, default=None, metavar="FILE",
                        help="explore a mesh scene file (.glb/.gltf incl. HM3D *.basis.glb, .ply, .obj) instead")
    parser.add_argument("--start", type=float, nargs=3, metavar=("X", "Y", "YAW"), default=None,
                        help="start pose in metres and radians (default: a seeded free pose)")
    parser.add_argument("--out", type=Path, required=True, help="episode folder to write")
    parser.add_argument("--config", default="fbe", help="method config YAML without a VLM (default configs/fbe.yaml)")
    parser.add_argument("--no-rerun", action="store_true", help="do not write the rerun recording")
    parser.add_argument("overrides", nargs="*", help="config overrides like agent.planner.max_move_per_step=1.5")
    add_scene_file_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eqa.sim_driver import explore_house, load_sim_run

    house = args.seed if args.scene is None else scene_world(args, args.scene)
    summary = explore_house(house, args.out, load_sim_run(args.config, args.overrides), n_rooms=args.rooms,
                            rerun=not args.no_rerun, start=tuple(args.start) if args.start else None)
    name = f"house {args.seed}" if args.scene is None else str(args.scene)
    print(f"{name}: {summary['decisions']} decisions (budget {summary['budget']}), "
          f"coverage {summary['coverage']:.1%}, path {summary['path_length_m']:.1f} m, "
          f"collisions {summary['collisions']}, stop: {summary['stop_reason']}")
    print(f"  wrote {args.out}/record.jsonl, summary.json, map.png, episode.png, map.npz"
          + ("" if args.scene else ", scene.json")
          + ("" if args.no_rerun else ", episode.rrd"))
    return 0
