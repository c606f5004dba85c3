"""Answer rules of a stop without confidence (StopConfig.answer_rule) compared on recorded episodes.

Usage:
  python bench/bench_answer_rules.py --runs out/tune_semantic_s2 [out/tune_semantic_s3 ...] \
      [--calibration FILE ...] [--eps 0.1]

--runs: `eqa bench --no-early-stop` folders (several are pooled). Every rule of eqa.method.ANSWER_RULES is
replayed (eqa.stopping.replay) at the fixed budget and with conformal stopping at --eps (threshold from
--calibration, default: the shipped file of the runs' method for the default camera); prints success by
question category and the paired difference of each rule to "most-relevant-step" with a house-bootstrap
95 % interval (2,000 resamples of whole houses). Choose rules on tuning-split runs only.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np


def main() -> int:
    warnings.filterwarnings("ignore", message="The TBB threading layer")
    from eqa.method import ANSWER_RULES, StopConfig
    from eqa.metrics import bootstrap_interval, cluster_bootstrap, policy_rule, replay_outcomes, vlm_rows
    from eqa.report import load_runs
    from eqa.sim_driver import shipped_calibration_path
    from vlm.conformal import Calibration

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, nargs="+", required=True)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--calibration", type=Path, default=None, help="calibration JSON (default: the shipped one)")
    args = ap.parse_args()

    name, summaries, episodes = load_runs(args.runs)
    episodes = [(s, rows) for s, rows in episodes if vlm_rows(rows)]
    method = summaries[0]["method"]
    cal = Calibration.load(args.calibration or shipped_calibration_path(method, args.eps))
    cats = sorted({s["category"] for s, _ in episodes})
    category = np.array([s["category"] for s, _ in episodes])
    boot = cluster_bootstrap([s["seed"] for s, _ in episodes], 2000)
    print(f"{name}: {len(episodes)} episodes, {len({s['seed'] for s, _ in episodes})} houses; conformal at eps "
          f"{args.eps:g} with threshold {cal.threshold:.4f} (N {cal.n})")
    print("| stop | answer rule | all | " + " | ".join(cats) + " | paired difference to most-relevant-step |")
    print("|---" * (len(cats) + 4) + "|")
    for stop in ("fixed-budget", "conformal"):
        base = None
        for rule_name in ANSWER_RULES:
            config = StopConfig(stop, eps=args.eps, answer_rule=rule_name)
            wins, steps = replay_outcomes(episodes, policy_rule(config, cal if stop == "conformal" else None))
            wins = np.array(wins, dtype=float)
            base = wins if base is None else base
            diff = wins - base
            lo, hi = bootstrap_interval(lambda idx: diff[idx].mean(), boot)
            cells = [f"{wins[category == c].mean():.1%}" for c in cats]
            print(f"| {stop} (steps {np.mean(steps):.3f}) | {rule_name} | {wins.mean():.1%} | " + " | ".join(cells)
                  + f" | {diff.mean():+.1%} [{lo:+.1%}, {hi:+.1%}] |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
