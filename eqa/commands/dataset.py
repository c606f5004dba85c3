"""`eqa dataset make`: procedural question sets as JSON lines (one question per line)."""
from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("dataset", help="question datasets", description="Question datasets.")
    ds_sub = parser.add_subparsers(dest="dataset_command", metavar="DATASET_COMMAND", required=True)
    make = ds_sub.add_parser("make", help="generate a procedural question set (JSON lines)",
                             description="Generate N multiple-choice questions over built-in houses. Splits use "
                                         "disjoint house seeds; the same arguments give a byte-identical file.")
    make.add_argument("--split", choices=["train", "calib", "test"], required=True, help="which split's houses")
    make.add_argument("--n", type=int, required=True, help="number of questions")
    make.add_argument("--seed", type=int, default=0, help="dataset seed in [0, 99] (default 0)")
    make.add_argument("--out", type=Path, required=True, help="output .jsonl file")
    make.add_argument("--config", default="questions", help="question config YAML (default configs/questions.yaml)")
    make.add_argument("--sim-config", default="sim", help="simulator config YAML (default configs/sim.yaml)")
    make.add_argument("overrides", nargs="*", help="question config overrides like min_pixels=800")
    make.set_defaults(func=run_make)


def run_make(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from eqa.config import load_config
    from sim.config import SimConfig
    from sim.questions import QuestionConfig, generate_questions, save_jsonl

    cfg = load_config(QuestionConfig, args.config, args.overrides)
    sim = load_config(SimConfig, args.sim_config)
    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    if Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a directory; give the path of a .jsonl file")
    start = time.perf_counter()
    with tqdm(total=args.n, desc=f"{args.split} questions", unit="q") as bar:
        questions = generate_questions(args.split, args.n, args.seed, cfg, sim, progress=bar.update)
    elapsed = time.perf_counter() - start
    out = Path(args.out)
    if out.parent != Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    save_jsonl(questions, out)
    cats = collections.Counter(q.category for q in questions)
    houses = len({q.house_seed for q in questions})
    print(f"wrote {len(questions)} questions from {houses} houses to {out} "
          f"({elapsed:.1f} s, {len(questions) / elapsed:.2f} questions/s)")
    print("  " + ", ".join(f"{c}: {n}" for c, n in sorted(cats.items())))
    return 0
