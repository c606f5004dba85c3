"""`eqa demo`: the main job on the built-in default. A generated house and question, semantic
exploration with the built-in VLM, conformal stopping with the shipped calibration."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eqa.narrate import choice_text


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="the main job: explore a built-in house until confident, then answer",
                            description="Generate a built-in house and a question (test split, never trained or "
                                        "calibrated on), explore with semantic frontier exploration and the built-in "
                                        "VLM, stop with conformal prediction sets (shipped calibration), print what "
                                        "the robot sees, believes and decides, and write the episode folder "
                                        "(record.jsonl, summary.json, episode.png, map.png, episode.rrd).")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="episode folder (default out/demo)")
    parser.add_argument("--seed", type=int, default=0, help="question seed (default 0)")
    add_episode_options(parser)
    parser.set_defaults(func=run)


def add_episode_options(parser: argparse.ArgumentParser, record: bool = True) -> None:
    """--eps, --method, --no-rerun, the bag recording options and method overrides (shared with `eqa run` and
    `eqa record`)."""
    parser.add_argument("--eps", type=float, default=0.1, help="conformal miscoverage level: 0.05, 0.1 or 0.2")
    parser.add_argument("--method", default="semantic", help="method config (default configs/semantic.yaml)")
    parser.add_argument("--no-rerun", action="store_true", help="do not write the rerun recording")
    if record:
        parser.add_argument("--record-bag", type=Path, default=None, metavar="DIR",
                            help="also record the episode as a rosbag2 folder DIR (must not exist; see eqa replay)")
    parser.add_argument("--bag-storage", choices=("mcap", "sqlite3"), default="mcap",
                        help="storage of the recorded bag (default mcap)")
    parser.add_argument("overrides", nargs="*", help="method overrides like stop.policy=fixed-budget")


def conformal_run(args: argparse.Namespace):
    """The simulator run of --method with conformal stopping at --eps, then the user's overrides."""
    from eqa.sim_driver import load_sim_run

    return load_sim_run(args.method, ["stop.policy=conformal", f"stop.eps={args.eps}"] + args.overrides)


def open_question_run(args: argparse.Namespace):
    """The simulator run of --method for an open question: relevance stopping, then the user's overrides; its VLM
    must write text."""
    from eqa.method import check_open_questions
    from eqa.sim_driver import load_sim_run

    run = load_sim_run(args.method, ["stop.policy=relevance"] + args.overrides)
    check_open_questions(run.method)
    return run


def run(args: argparse.Namespace) -> int:
    from eqa.narrate import narrator
    from eqa.sim_driver import run_question
    from sim.questions import generate_questions
    from vlm import make_vlm

    sim_run = conformal_run(args)
    method = sim_run.method
    print(f"generating a built-in house and a question (test split, seed {args.seed}) ...", flush=True)
    q = generate_questions("test", 1, args.seed, sim_run.questions)[0]
    vlm = make_vlm(method.vlm)
    print(f"house {q.house_seed} ({q.floor_area_m2:.0f} m^2 of floor), start at ({q.start[0]:.1f}, {q.start[1]:.1f})")
    print(f"question: {q.question}")
    print_choices(q.choices)
    print(f"method {method.name}, VLM {vlm.info.model_id}, stop policy {method.stop.policy} (eps {method.stop.eps:g})\n")
    tap = bag_recorder(args, sim_run)
    summary = run_question(q, sim_run, args.out, vlm=vlm, rerun=not args.no_rerun, on_record=narrator(sys.stdout),
                           tap=tap)
    report(summary, args.out)
    if tap is not None:
        print(f"recorded the episode as a bag: {tap.path}/")
    return 0


def bag_recorder(args: argparse.Namespace, sim_run):
    """The bag recorder of --record-bag (None without it)."""
    if args.record_bag is None:
        return None
    from eqa.bag.recorder import BagRecorder

    return BagRecorder(args.record_bag, args.bag_storage, run_config=sim_run.to_dict())


def print_choices(choices) -> None:
    for i in range(len(choices)):
        print(f"  {choice_text(choices, i)}")


def report(summary: dict, out: Path) -> None:
    """Print the outcome of a question episode."""
    choices = summary["choices"]
    given = choice_text(choices, summary["answer"]) if choices else repr(summary.get("answer_text"))
    print(f"\nanswer: {given}  ({summary['answer_rule']}; "
          f"stop: {summary['stop_reason']} ({summary['stop_policy']}) after {summary['decisions']}/{summary['budget']} decisions, "
          f"{summary['path_length_m']:.1f} m)")
    if summary.get("success") is not None:
        truth = summary["truth"]
        print(f"truth:  {choice_text(choices, truth)}  -> " + ("correct" if summary["success"] else "wrong"))
    files = ["record.jsonl", "summary.json", "episode.png", "map.png"] + (
        ["episode.rrd"] if (out / "episode.rrd").is_file() else [])
    print(f"wrote {out}/: " + ", ".join(files))
