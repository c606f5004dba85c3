"""FBE baseline over seeded default houses: coverage within budget, collisions, stuck decisions,
planner ms per decision (excluding mapping and rendering), episode wall time, and the
coverage-versus-steps curve (PNG).

Usage: python bench/bench_explore.py [--houses 20] [--first-seed 0] [--workers 2] [--out out/bench_explore]
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def _one(args):
    seed, out, config_name, overrides = args
    warnings.filterwarnings("ignore", message="The TBB threading layer")
    from eqa.records import read_records
    from eqa.sim_driver import explore_house, load_sim_run

    summary = explore_house(seed, Path(out) / f"house{seed}", load_sim_run(config_name, overrides), rerun=False,
                            progress=False)
    return summary, read_records(Path(out) / f"house{seed}" / "record.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--houses", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0, help="house seeds first-seed .. first-seed + houses - 1")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("out/bench_explore"))
    parser.add_argument("--config", default="fbe", help="method config without a VLM (default configs/fbe.yaml)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. agent.planner.max_move_per_step=2.0")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.houses)
    jobs = [(seed, str(args.out), args.config, args.overrides) for seed in seeds]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(_one, jobs))
    wall = time.perf_counter() - t0

    cov = np.array([s["coverage"] for s, _ in results])
    collisions = sum(s["collisions"] for s, _ in results)
    plan_ms = [r.timings.plan_s * 1e3 for _, rows in results for r in rows if r.plan is not None]
    map_ms = [r.timings.map_s * 1e3 for _, rows in results for r in rows]
    ep_wall = [s["wall_time_s"] for s, _ in results]
    recoveries = sum(s["recovery_turns"] for s, _ in results)
    max_no_progress = 0
    for _, rows in results:
        run = 0
        for r in rows:
            run = run + 1 if (r.action == "move" and r.outcome.moved < 0.1) else 0
            max_no_progress = max(max_no_progress, run)
    print(f"FBE over {args.houses} default houses (seeds {seeds.start}-{seeds.stop - 1}) (budget ceil(3*sqrt(area)) decisions):")
    print(f"  coverage of reachable floor: median {np.median(cov):.1%}, min {cov.min():.1%}; "
          f">= 90 % in {np.mean(cov >= 0.9):.0%} of houses ({int(np.sum(cov >= 0.9))}/{len(cov)})")
    print(f"  collisions: {collisions}; recovery turns: {recoveries}; longest run of no-progress moves: {max_no_progress}")
    print(f"  planner per decision (excl. mapping/rendering): median {np.median(plan_ms):.1f} ms, "
          f"p90 {np.percentile(plan_ms, 90):.1f} ms; mapping per decision: median {np.median(map_ms):.1f} ms")
    print(f"  episode wall time: median {np.median(ep_wall):.1f} s (rendering + mapping + planning); "
          f"total {wall:.0f} s with {args.workers} workers")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = []
    for _, rows in results:
        budget = rows[0].budget
        c = [r.truth.coverage for r in rows[1:]]  # after 1, 2, ... decisions (record k: when deciding the k-th)
        c = (c + [c[-1]] * budget)[:budget] if c else [0.0] * budget
        curves.append(np.interp(np.linspace(0, 1, 51), np.linspace(0, 1, budget), c))
    curves = np.array(curves)
    x = np.linspace(0, 1, 51)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.plot(x, curves.mean(axis=0), label="mean")
    ax.fill_between(x, np.percentile(curves, 10, axis=0), np.percentile(curves, 90, axis=0), alpha=0.3,
                    label="10-90 %")
    ax.axhline(0.9, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("decisions / budget")
    ax.set_ylabel("coverage of reachable floor")
    ax.set_title(f"FBE coverage vs steps ({args.houses} houses)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "coverage_vs_steps.png")
    (args.out / "results.json").write_text(json.dumps([s for s, _ in results], indent=1))
    print(f"  wrote {args.out / 'coverage_vs_steps.png'}")


if __name__ == "__main__":
    main()
