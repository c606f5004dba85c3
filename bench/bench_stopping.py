"""Stop policies compared on recorded episodes: conformal coverage and efficiency (issue 9).

Usage:
  python bench/bench_stopping.py --calib out/calib_semantic --test out/test_semantic \
      [--live eps=DIR ...] [--out out/bench_stopping]

--calib / --test: `eqa bench --no-early-stop` folders of calibration- and test-split questions run with the
same method (several folders each are pooled, e.g. test sets of several dataset seeds). For eps in 0.05, 0.1, 0.2 it prints the threshold, the coverage of the whole-episode
intersection (bar: within [1 - eps - 0.03, 1 - eps + 0.05]) and at the stop, and the success and normalised
steps of conformal stopping against fixed-budget; then, for relevance and max-prob stopping, the cheapest
swept threshold reaching fixed-budget's success; and the oracle. --live 0.1=DIR: a live `eqa bench` run of
the same test questions with stop.policy=conformal stop.eps=0.1, compared episode by episode with the replay.
Coverage intervals: Wilson, and a house-level bootstrap (questions of one house are correlated).
Writes success_vs_steps.png and stopping.json to --out.
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

EPS = (0.05, 0.1, 0.2)


def pct(r: dict) -> str:
    return f"{r['rate']:.1%} [{r['ci95'][0]:.1%}, {r['ci95'][1]:.1%}]"


def main() -> None:
    warnings.filterwarnings("ignore", message="The TBB threading layer")
    from eqa.metrics import (bootstrap_interval, calibration_scores, cluster_bootstrap, conformal_coverage,
                             outcome_summary, policy_rule, replay_outcomes, success_curves, vlm_rows)
    from eqa.report import load_run, load_runs, shared_vlm
    from eqa.method import StopConfig
    from eqa.stopping import make_stop
    from eqa.stopping import replay as replay_policy
    from vlm.conformal import calibrate

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calib", type=Path, nargs="+", required=True)
    parser.add_argument("--test", type=Path, nargs="+", required=True)
    parser.add_argument("--live", nargs="*", default=[], metavar="EPS=DIR")
    parser.add_argument("--out", type=Path, default=Path("out/bench_stopping"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    _, calib_summaries, calib_eps = load_runs(args.calib)
    name, test_summaries, test_eps = load_runs(args.test)
    test_eps = [(s, rows) for s, rows in test_eps if vlm_rows(rows)]  # every per-episode array below aligns
    vlm = shared_vlm(calib_summaries + test_summaries, "--calib and --test")
    scores = calibration_scores(calib_eps)
    houses = [s["seed"] for s, _ in test_eps]
    print(f"calibration: {len(scores)} episodes ({', '.join(map(str, args.calib))}); test: {len(test_eps)} "
          f"episodes from {len(set(houses))} houses ({', '.join(map(str, args.test))}); VLM {vlm['model_id']}")
    result = {"calibration_episodes": len(scores), "test_episodes": len(test_eps), "vlm": vlm, "eps": {}}

    import numpy as np

    def run_rule(rule):
        """(success and normalised steps, per-episode wins as floats) of a rule replayed on the test episodes."""
        wins, steps = replay_outcomes(test_eps, rule)
        return outcome_summary(wins, steps), np.array(wins, dtype=float)

    cals = {eps: calibrate(scores, eps, vlm["model_id"], vlm["prompt_version"], "") for eps in EPS}
    boot = cluster_bootstrap(houses, 2000)
    fixed, fixed_wins = run_rule(policy_rule(StopConfig("fixed-budget")))
    result["fixed-budget"] = fixed
    print(f"\nfixed-budget (stops at the budget or when nothing is left to explore): success {pct(fixed)}, "
          f"normalised steps {fixed['normalized_steps']:.3f}")
    print("\n| eps | N | q | coverage (whole episode) [house bootstrap] | bar | coverage at stop | success | "
          "normalised steps | steps / fixed-budget | success >= fixed-budget |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for eps, cal in cals.items():
        cov = conformal_coverage(test_eps, cal)
        lo, hi = 1 - eps - 0.03, 1 - eps + 0.05
        ok = lo <= cov["coverage"]["rate"] <= hi
        ratio = cov["normalized_steps"] / fixed["normalized_steps"]
        covered = np.array(cov.pop("covered"), dtype=float)
        clo, chi = bootstrap_interval(lambda idx: covered[idx].mean(), boot)
        cov["coverage"]["house_bootstrap_ci95"] = [clo, chi]
        diff = run_rule(policy_rule(StopConfig("conformal", eps=eps), cal))[1] - fixed_wins
        dlo, dhi = bootstrap_interval(lambda idx: diff[idx].mean(), boot)
        cov["success_diff"], cov["success_diff_ci95"] = [float(diff.mean()), [dlo, dhi]]
        result["eps"][str(eps)] = {"threshold": cal.threshold, "n": cal.n, "band": [lo, hi], "coverage_ok": ok,
                                   "steps_ratio": ratio, **cov}
        print(f"| {eps:g} | {cal.n} | {cal.threshold:.4f} | {pct(cov['coverage'])} [{clo:.1%}, {chi:.1%}] | "
              f"[{lo:.2f}, {hi:.2f}] "
              f"{'met' if ok else 'NOT met'} | {pct(cov['coverage_at_stop'])} | {pct(cov)} | "
              f"{cov['normalized_steps']:.3f} | {ratio:.2f} | {'yes' if cov['rate'] >= fixed['rate'] else 'no'} "
              f"({diff.mean():+.1%} [{dlo:+.1%}, {dhi:+.1%}] paired) |")

    curves = success_curves(test_eps, scores, vlm["model_id"], vlm["prompt_version"])
    result["curves"] = curves
    print("\nwithout the explored stop (the literal fixed budget: every episode uses its whole budget):")
    pure, pure_wins = run_rule(policy_rule(StopConfig("fixed-budget", stop_when_explored=False)))
    print(f"  fixed-budget: success {pct(pure)}, normalised steps {pure['normalized_steps']:.3f}")
    result["fixed-budget-whole"] = pure
    for eps, cal in cals.items():
        conf, conf_wins = run_rule(policy_rule(StopConfig("conformal", eps=eps, stop_when_explored=False), cal))
        diff = conf_wins - pure_wins
        result["eps"][str(eps)]["without_explored_stop"] = {**conf, "success_diff": float(diff.mean())}
        print(f"  conformal eps {eps:g}: success {pct(conf)} ({diff.mean():+.1%} paired), normalised steps "
              f"{conf['normalized_steps']:.3f} = {conf['normalized_steps'] / pure['normalized_steps']:.2f} of fixed-budget")

    print("\ncheapest swept setting reaching fixed-budget's success (replayed):")
    for policy, points in curves.items():
        ok = [p for p in points if p["n"] and p["rate"] >= fixed["rate"]]
        best = min(ok, key=lambda p: p["normalized_steps"]) if ok else None
        if best:
            print(f"  {policy:<13} param {best['param']}: success {pct(best)}, steps {best['normalized_steps']:.3f} "
                  f"({best['normalized_steps'] / fixed['normalized_steps']:.2f} of fixed-budget)")
        else:
            top = max((p for p in points if p["n"]), key=lambda p: p["rate"])
            print(f"  {policy:<13} never reaches it (best success {pct(top)} at steps {top['normalized_steps']:.3f})")

    for spec in args.live:
        eps_s, folder = spec.split("=", 1)
        eps = float(eps_s)
        _, live_summaries, _ = load_run(folder)
        cal = cals.get(eps) or calibrate(scores, eps, vlm["model_id"], vlm["prompt_version"], "")
        by_id = {s["episode_id"]: (s, rows) for s, rows in test_eps}
        same_stop = same_answer = 0
        covered = []
        for s in live_summaries:
            if s["episode_id"] not in by_id or "truth_in_set" not in s:
                raise SystemExit(f"{folder}: episode {s['episode_id']} is not a conformal run of the --test questions")
            rec, rows = by_id[s["episode_id"]]
            policy = make_stop(StopConfig("conformal", eps=eps), len(rec["choices"]), calibration=cal)
            stop, answer = replay_policy(policy, rows, rec["budget"])
            same_stop += rows[stop].step == s["decisions"]
            same_answer += answer == s["answer"]
            covered.append(s["truth_in_set"])
        n = len(live_summaries)
        live = {"episodes": n, "same_stop_as_replay": same_stop, "same_answer_as_replay": same_answer,
                "success": sum(bool(s["success"]) for s in live_summaries) / n,
                "normalized_steps": sum(s["normalized_steps"] for s in live_summaries) / n,
                "coverage_at_stop": sum(covered) / n}
        result.setdefault("live", {})[eps_s] = live
        print(f"\nlive conformal run eps {eps:g} ({folder}): {n} episodes; stop step equal to the replay in {same_stop}/{n}, "
              f"answer in {same_answer}/{n}; success {live['success']:.1%}, normalised steps "
              f"{live['normalized_steps']:.3f}, coverage at stop {live['coverage_at_stop']:.1%}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.8), dpi=120)
    for policy, points in curves.items():
        pts = sorted((p["normalized_steps"], p["rate"]) for p in points if p["n"])
        ax.plot(*zip(*pts), marker="o" if len(pts) > 1 else "*", markersize=4 if len(pts) > 1 else 12,
                label=policy)
    ax.axhline(fixed["rate"], color="grey", lw=0.8, ls="--", label="fixed-budget success")
    ax.set_xlabel("normalised steps (decisions / budget)")
    ax.set_ylabel("success rate")
    ax.set_title(f"Stop policies on {len(test_eps)} test episodes ({name})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "success_vs_steps.png")
    (args.out / "stopping.json").write_text(json.dumps(result, indent=1, default=float))
    print(f"\nwrote {args.out}/success_vs_steps.png and stopping.json")


if __name__ == "__main__":
    main()
