"""`eqa run`: ask your own question about a built-in house or a mesh scene file."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eqa.commands.demo import add_episode_options
from eqa.commands.scene_file import add_scene_file_options, seed_or_file, scene_world


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="ask your own question about a built-in house or a mesh scene",
                            description="Explore built-in house SCENE (a seed) or the mesh scene file SCENE with "
                                        "semantic exploration and conformal "
                                        "stopping until confident about QUESTION, then answer one of CHOICES. "
                                        "Without --choices the question is open: it stops by relevance "
                                        "(stop.policy=relevance) and the VLM answers in free text (a backend that "
                                        "writes text: vlm.backend=hf or openai). Writes the episode folder to OUT.")
    parser.add_argument("--question", required=True, help='e.g. "What colour is the sofa?"')
    parser.add_argument("--choices", nargs="+", default=None,
                        help="2 to 6 answers, e.g. red blue green (none: an open question, answered in free text)")
    parser.add_argument("--scene", type=seed_or_file, required=True,
                        help="built-in house seed, or a mesh scene file (.glb/.gltf incl. HM3D *.basis.glb, .ply, "
                             ".obj); the shipped calibrations were made in built-in houses")
    parser.add_argument("--rooms", type=int, default=None, help="room count (default: drawn from the seed)")
    parser.add_argument("--start", type=float, nargs=3, metavar=("X", "Y", "YAW"), default=None,
                        help="start pose in metres and radians (default: a seeded free pose)")
    parser.add_argument("--answer", default=None, help="the true choice, if you know it (scores the run)")
    parser.add_argument("--out", type=Path, default=Path("out/run"), help="episode folder (default out/run)")
    add_episode_options(parser)
    add_scene_file_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eqa.commands.demo import bag_recorder, conformal_run, open_question_run, print_choices, report
    from eqa.narrate import narrator
    from eqa.sim_driver import CustomQuestion, run_custom
    from vlm import make_vlm

    truth = None
    if args.choices is None and args.answer is not None:
        raise ValueError("--answer needs --choices (an open question's answer is free text)")
    if args.answer is not None:
        if args.answer not in args.choices:
            raise ValueError(f"--answer {args.answer!r} is not one of --choices {args.choices}")
        truth = args.choices.index(args.answer)
    house = args.scene if isinstance(args.scene, int) else scene_world(args, args.scene)
    name = f"house {args.scene}" if isinstance(args.scene, int) else str(args.scene)
    scene_id = args.scene if isinstance(args.scene, int) else args.scene.name.split(".")[0]
    q = CustomQuestion(id=f"custom-{scene_id}", question=args.question, choices=list(args.choices or ()),
                       answer_index=truth)
    sim_run = conformal_run(args) if args.choices else open_question_run(args)
    vlm = make_vlm(sim_run.method.vlm)
    print(f"{name}; question: {q.question}")
    print_choices(q.choices)
    tap = bag_recorder(args, sim_run)
    summary = run_custom(q, house, sim_run, args.out, vlm=vlm, n_rooms=args.rooms,
                         start=tuple(args.start) if args.start else None, rerun=not args.no_rerun,
                         on_record=narrator(sys.stdout), tap=tap)
    report(summary, args.out)
    if tap is not None:
        print(f"recorded the episode as a bag: {tap.path}/")
    return 0
