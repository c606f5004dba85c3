"""Semantic exploration against frontier-only exploration on the same questions (issue 8).

Usage:
  python bench/bench_semantic.py --runs fbe=out/test_fbe semantic=out/test_semantic \
      [oracle=out/test_oracle ...] [--baseline fbe] [--out out/bench_semantic]

Each run is an `eqa bench --no-early-stop` folder of the same test questions, or several folders
joined by commas (NAME=DIR1,DIR2: test sets of several dataset seeds, pooled). Prints per method: the
median number of decisions until the first answerable view (episodes that never see one count as
never, i.e. sort last), its ratio to the baseline's median with a paired bootstrap 95 % interval, the
share of episodes reaching an answerable view, success at the fixed budget (answer at the most relevant
view of the whole budget) with 95 % Wilson intervals and the paired difference to the baseline, VLM
calls per view (views: each decision's newest view plus the earlier views the explorer scored, i.e. the
look-around's at the first decision and those captured along the way after a move; an earlier view
without a visible candidate point is not sent to the model unless the explorer also locates targets),
the median per-decision time of mapping + planning + prompting (excluding the model calls), and how
many decisions went to look closer at a located target (`semantic.approach_relevance`). Bootstrap
intervals resample whole houses (the questions of one house are correlated).
Writes semantic.json and answerable_vs_steps.png to --out.
"""
from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path

import numpy as np

BOOTSTRAP = 2000
FRACTIONS = (0.25, 0.5, 1.0)


def first_answerable(summaries: dict) -> dict:
    return {k: (s["first_answerable_step"] if s["first_answerable_step"] is not None else math.inf)
            for k, s in summaries.items()}


def main() -> None:
    warnings.filterwarnings("ignore", message="The TBB threading layer")
    from eqa.metrics import bootstrap_interval, budget_fraction_rule, cluster_bootstrap, rate, vlm_rows
    from eqa.report import load_runs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, metavar="NAME=DIR[,DIR...]")
    parser.add_argument("--baseline", default=None, help="run name to compare against (default: the first)")
    parser.add_argument("--out", type=Path, default=Path("out/bench_semantic"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for spec in args.runs:
        name, folder = spec.split("=", 1)
        _, summaries, episodes = load_runs(folder.split(","))
        runs[name] = {"summaries": {s["question_id"]: s for s in summaries},
                      "episodes": {s["question_id"]: (s, rows) for s, rows in episodes}}
    base = args.baseline or next(iter(runs))
    common = sorted(set.intersection(*(set(r["summaries"]) for r in runs.values())))
    print(f"{len(common)} questions common to {', '.join(runs)}; baseline {base}\n")
    houses = [runs[base]["summaries"][q]["seed"] for q in common]
    boot = cluster_bootstrap(houses, BOOTSTRAP)
    print(f"{len(set(houses))} houses; 95 % intervals from {BOOTSTRAP} house-level bootstrap resamples\n")
    steps = {}
    for n, r in runs.items():
        first = first_answerable(r["summaries"])
        steps[n] = np.array([first[q] for q in common])

    def wins_at(r, fraction):
        out = []
        for q in common:
            s, rows = r["episodes"][q]
            out.append(bool(vlm_rows(rows)) and budget_fraction_rule(fraction)(s, rows)[1] == s["truth"])
        return np.array(out)

    wins = {(n, f): wins_at(r, f) for n, r in runs.items() for f in FRACTIONS}  # FRACTIONS includes 1.0
    result = {"questions": len(common), "houses": len(set(houses)), "baseline": base, "methods": {}}
    print("| method | median steps to first answerable view | ratio to baseline [95 % CI] | reached | "
          "fixed-budget success [95 % CI] | difference to baseline [95 % CI] | VLM calls / view | "
          "map + plan + prompt per decision (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for n, r in runs.items():
        med, base_med = float(np.median(steps[n])), float(np.median(steps[base]))
        ratio = med / base_med if base_med > 0 else math.nan
        def median_ratio(idx, a=steps[n], b=steps[base]):
            with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 and inf / inf: nan, dropped
                return np.median(a[idx]) / np.median(b[idx])

        lo, hi = bootstrap_interval(median_ratio, boot)
        succ = rate(wins[n, 1.0].tolist())
        diff = wins[n, 1.0].astype(float) - wins[base, 1.0].astype(float)
        dlo, dhi = bootstrap_interval(lambda idx, d=diff: d[idx].mean(), boot)
        calls, views, per_decision = 0, 0, []
        for q in common:
            s, rows = r["episodes"][q]
            calls += s.get("vlm_calls", 0)
            views += sum(1 + len(row.earlier_views) for row in rows)  # each decision's view + its earlier views
            for row in rows:
                if row.plan is not None:
                    t = row.timings
                    per_decision.append(t.map_s + t.plan_s + t.prompt_s)
        reached = rate(np.isfinite(steps[n]).tolist())
        t_med = float(np.median(per_decision)) * 1000 if per_decision else math.nan
        result["methods"][n] = {"median_first_answerable": med, "ratio": ratio, "ratio_ci95": [lo, hi],
                                "reached": reached, "success": succ, "success_diff": float(diff.mean()),
                                "success_diff_ci95": [dlo, dhi], "vlm_calls_per_view": calls / max(views, 1),
                                "map_plan_prompt_ms_median": t_med}
        print(f"| {n} | {med:.1f} | {ratio:.2f} [{lo:.2f}, {hi:.2f}] | {reached['rate']:.1%} | "
              f"{succ['rate']:.1%} [{succ['ci95'][0]:.1%}, {succ['ci95'][1]:.1%}] | {diff.mean():+.1%} "
              f"[{dlo:+.1%}, {dhi:+.1%}] | {calls / max(views, 1):.2f} | {t_med:.1f} ms |")

    print("\nsuccess when stopping at a fraction of the budget (answer at the most relevant view so far):")
    print("| method | " + " | ".join(f"{f:g} budget" for f in FRACTIONS) + " |")
    print("|---|" + "---|" * len(FRACTIONS))
    for n in runs:
        cells = []
        for f in FRACTIONS:
            succ = rate(wins[n, f].tolist())
            diff = wins[n, f].astype(float) - wins[base, f].astype(float)
            dlo, dhi = bootstrap_interval(lambda idx, d=diff: d[idx].mean(), boot)
            result["methods"][n][f"success_at_{f:g}"] = {**succ, "diff": float(diff.mean()), "diff_ci95": [dlo, dhi]}
            cells.append(f"{succ['rate']:.1%} [{succ['ci95'][0]:.1%}, {succ['ci95'][1]:.1%}], "
                         f"{diff.mean():+.1%} [{dlo:+.1%}, {dhi:+.1%}]")
        print(f"| {n} | " + " | ".join(cells) + " |")

    print("\ndecisions that went to look closer at a located target (semantic.approach_relevance):")
    print("| method | decisions | approach moves | before the first answerable view | episodes with one |")
    print("|---|---|---|---|---|")
    for n, r in runs.items():
        decisions = moves = early = episodes = 0
        for i, q in enumerate(common):
            rows = r["episodes"][q][1]
            steps_q = [row.step for row in rows if row.plan is not None and row.plan.approach is not None]
            decisions += len(rows)
            moves += len(steps_q)
            early += sum(st < steps[n][i] for st in steps_q)
            episodes += bool(steps_q)
        result["methods"][n]["approach"] = {"decisions": decisions, "moves": moves, "before_first_answerable": early,
                                            "episodes": episodes}
        print(f"| {n} | {decisions} | {moves} ({moves / max(decisions, 1):.1%}) | {early} | {episodes} |")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=120)
    for n, r in runs.items():
        budgets = np.array([r["summaries"][q]["budget"] for q in common])
        x = np.sort(steps[n] / budgets)
        x = x[np.isfinite(x)]
        ax.step(x, np.arange(1, len(x) + 1) / len(common), where="post", label=n)
    ax.set_xlabel("normalised steps (decisions / budget)")
    ax.set_ylabel("fraction of episodes with an answerable view")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "answerable_vs_steps.png")
    (args.out / "semantic.json").write_text(json.dumps(result, indent=1, default=float))
    print(f"\nwrote {args.out}/semantic.json and answerable_vs_steps.png")


if __name__ == "__main__":
    main()
