"""Benchmark harness throughput: FBE episodes per hour with 1 and 2 worker processes.

Usage: python bench/bench_runner.py [--questions 8] [--out out/bench_runner]
Generates a small test split, runs it with `eqa bench`'s runner at 1 and 2 workers
(fresh folders) and prints episodes/hour and the speed-up.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
import warnings
from pathlib import Path


def main() -> None:
    warnings.filterwarnings("ignore", message="The TBB threading layer")
    from eqa.runner import Job, run_jobs
    from eqa.sim_driver import load_sim_run
    from sim.questions import generate_questions

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("out/bench_runner"))
    args = parser.parse_args()
    questions = generate_questions("test", args.questions, 0)
    jobs = [Job(q.id, q.to_json()) for q in questions]
    method = json.loads(json.dumps(load_sim_run("fbe").to_dict()))
    rates = {}
    for workers in (1, 2):
        out = args.out / f"workers{workers}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        summaries = run_jobs(jobs, "eqa.sim_driver:question_job", method, out, workers=workers, progress=False)
        elapsed = time.perf_counter() - t0
        rates[workers] = len(summaries) / elapsed * 3600
        print(f"FBE, {workers} worker(s): {len(summaries)} episodes in {elapsed:.1f} s = {rates[workers]:.0f} episodes/hour "
              f"(mean {sum(s['decisions'] for s in summaries) / len(summaries):.1f} decisions/episode)")
    print(f"speed-up 2 vs 1 workers: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
