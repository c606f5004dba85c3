"""`eqa record`: a built-in simulator episode (the demo question of a seed) recorded as a rosbag2 bag."""
from __future__ import annotations

import argparse
from pathlib import Path

from eqa.commands.demo import add_episode_options


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("record", help="run the demo question of a seed and record it as a rosbag2 bag",
                            description="Run the test-split question of --seed (as `eqa demo --seed N`) and write "
                                        "the episode folder OUT with OUT/bag, a rosbag2 folder (metadata.yaml + "
                                        "MCAP or sqlite3) of the camera, the robot's poses and the agent's "
                                        "decisions. Replay it with `eqa replay OUT --check` (OUT or OUT/bag).")
    parser.add_argument("--seed", type=int, default=0, help="question seed (default 0)")
    parser.add_argument("--out", type=Path, default=Path("out/record"), help="episode folder (default out/record)")
    add_episode_options(parser, record=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eqa.commands import demo

    args.record_bag = args.out / "bag"
    if args.record_bag.exists():
        raise ValueError(f"{args.record_bag} exists: record into a new --out folder")
    return demo.run(args)
