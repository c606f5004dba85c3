"""`eqa bench`: run a question dataset with a method, in parallel, resumably."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="run a question dataset with a method (parallel, resumable)",
                            description="Run every question of DATASET with METHOD; one episode folder per question "
                                        "under OUT/episodes/, written atomically. Re-running the same command "
                                        "resumes: finished episodes are never re-run. A folder keeps its method config "
                                        "(method.json) and VLM (vlm.json): resuming it with another is refused.")
    parser.add_argument("--dataset", type=Path, required=True, help="questions (JSON lines, `eqa dataset make`)")
    parser.add_argument("--method", default="fbe", help="method config YAML (default configs/fbe.yaml)")
    parser.add_argument("--out", type=Path, required=True, help="benchmark folder")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    parser.add_argument("--ray", metavar="ADDRESS", default=None,
                        help="run on a Ray cluster ('auto', 'ray://host:10001', or 'local' for a local Ray); "
                             "OUT must be on a filesystem every node shares")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument("--no-early-stop", action="store_true",
                        help="run every episode to its budget, recording every step (for calibration / sweeps)")
    parser.add_argument("overrides", nargs="*", help="method overrides like agent.planner.max_move_per_step=2")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from eqa.runner import Job, run_jobs
    from eqa.sim_driver import load_sim_run
    from sim.questions import load_jsonl

    run = load_sim_run(args.method, args.overrides + (["early_stop=false"] if args.no_early_stop else []))
    questions = load_jsonl(args.dataset)[: args.limit]
    args.out.mkdir(parents=True, exist_ok=True)
    run_dict = json.loads(json.dumps(run.to_dict()))  # as stored
    saved = args.out / "method.json"
    if saved.is_file() and json.loads(saved.read_text()) != run_dict:
        raise ValueError(f"{args.out} holds episodes of a different method config ({saved}); use another --out")
    saved.write_text(json.dumps(run_dict, indent=1))
    jobs = [Job(q.id, q.to_json()) for q in questions]
    summaries = run_jobs(jobs, "eqa.sim_driver:question_job", run_dict, args.out, workers=args.workers,
                         ray_address=args.ray)
    print(f"{len(summaries)}/{len(jobs)} episodes finished in {args.out}/episodes "
          f"(method {run.method.name}); `eqa report {args.out}` summarises them")
    return 0
