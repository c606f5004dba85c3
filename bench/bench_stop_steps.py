"""Where conformal stopping spends its steps, and whether re-scaling the VLM's outputs shortens them.

Usage:
  python bench/bench_stop_steps.py --runs out/tune_nc05_semantic_s2 out/tune_nc05_semantic_s3 \
      out/tune_nc05_semantic_s4 [--calibration vlm/calibrations/semantic-eps0.1.json]

--runs: `eqa bench --no-early-stop` folders of built-in simulator questions (tuning-split seeds; at least two).
1. With the given calibration's threshold replayed on every episode: mean normalised steps split by how the
   episode ends (confident: one answer left; otherwise the budget, nothing left to explore or an empty set) and
   by question category, with success and the share that met an answerable view (simulator oracle).
2. Transforms of the recorded outputs, each scored with per-run thresholds at eps computed from the other runs
   (leave one run out): relevance R -> R^a; answer temperature T on questions with number choices or on all;
   relevance recalibrated to P(answerable) by logistic regression on logit R (one fit, or one per category:
   the category is the simulator's label, not something a deployed VLM knows); and one threshold per category
   (class-conditional conformal). Prints whole-episode coverage, success and normalised steps of each.
"""
from __future__ import annotations

import argparse
import collections
import warnings
from pathlib import Path

import numpy as np


def logit(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 1e-6, 1 - 1e-6)
    return np.log(x) - np.log1p(-x)


def fit_logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(slope, intercept) of P(y) = sigmoid(slope * x + intercept), by Newton steps on the log-likelihood."""
    w = np.array([1.0, 0.0])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(w[0] * x + w[1])))
        g = np.array([((p - y) * x).sum(), (p - y).sum()])
        h = p * (1 - p)
        w = w - np.linalg.solve(np.array([[(h * x * x).sum(), (h * x).sum()], [(h * x).sum(), h.sum()]])
                                + 1e-6 * np.eye(2), g)
    return w


def episode_arrays(folder: Path) -> list[dict]:
    """Per episode with VLM rows: category, truth, budget, number choices, its VLM rows, and per row R, p and
    whether it is answerable."""
    from eqa.metrics import vlm_rows
    from eqa.report import load_run
    from vlm.builtin_model.model import choice_number

    out = []
    for s, rows in load_run(folder)[2]:
        rows = vlm_rows(rows)
        if rows:
            out.append({"cat": s["category"], "truth": s["truth"], "budget": s["budget"], "rows": rows,
                        "numbers": all(choice_number(c) >= 0 for c in s["choices"]),
                        "R": np.array([r.relevance for r in rows]), "P": np.array([r.p_answer for r in rows]),
                        "answerable": np.array([bool(r.truth.answerable) for r in rows])})
    return out


def replay(e: dict, R: np.ndarray, P: np.ndarray, q: float) -> tuple[bool, float, str]:
    """The agent's conformal stop (eqa.stopping, StopConfig's defaults) at threshold q on the episode's rows with
    relevance R and answer probabilities P in place of the recorded ones: (right, normalised steps, how it
    ended)."""
    from dataclasses import replace

    from eqa.method import StopConfig
    from eqa.stopping import ConformalStop
    from eqa.stopping import replay as replay_policy

    rows = [replace(r, views=r.views[:-1] + [replace(r.newest, relevance=float(R[i]), p_answer=list(P[i]))])
            for i, r in enumerate(e["rows"])]
    cfg = StopConfig(policy="conformal")
    policy = ConformalStop(P.shape[1], q, stop_on_empty=cfg.stop_on_empty, stop_when_explored=cfg.stop_when_explored,
                           answer_rule=cfg.answer_rule)
    stop, answer = replay_policy(policy, rows, e["budget"])
    end = ("confident" if policy.stopped_confident else
           "empty set" if not policy.final_set else "budget or explored")
    return answer == e["truth"], rows[stop].step / e["budget"], end


def score(R: np.ndarray, P: np.ndarray, truth: int) -> float:
    """The episode's non-conformity (vlm.conformal.nonconformity) with outputs R, P."""
    from vlm.conformal import nonconformity

    return nonconformity(zip(R, P), truth)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", type=Path, required=True)
    ap.add_argument("--calibration", type=Path, default=None,
                    help="calibration file for part 1 (default: the shipped semantic-eps0.1.json)")
    ap.add_argument("--eps", type=float, default=0.1, help="eps of part 2 (default 0.1)")
    args = ap.parse_args()
    if len(args.runs) < 2:
        ap.error("give at least two runs: each run's threshold in part 2 comes from the others")
    warnings.filterwarnings("ignore", message="The TBB threading layer")
    from eqa.stopping import SHIPPED_CALIBRATIONS
    from vlm.conformal import Calibration, conformal_threshold

    runs = [episode_arrays(f) for f in args.runs]
    flat = [e for r in runs for e in r]
    cal = Calibration.load(args.calibration or SHIPPED_CALIBRATIONS / "semantic-eps0.1.json")
    print(f"{len(flat)} episodes in {len(runs)} runs; part 1 at threshold {cal.threshold:.4f} (eps {cal.eps})")
    ends = [(e, *replay(e, e["R"], e["P"], cal.threshold)) for e in flat]
    total = np.mean([st for _, _, st, _ in ends])
    print(f"mean normalised steps {total:.3f}, success {np.mean([ok for _, ok, _, _ in ends]):.1%}")
    print("| group | episodes | share of the mean steps | mean steps | success | met an answerable view |")
    print("|---|---|---|---|---|---|")
    for key in ("end", "category"):
        groups = collections.defaultdict(list)
        for e, ok, st, end in ends:
            groups[end if key == "end" else e["cat"]].append((ok, st, e["answerable"].any()))
        for name, g in sorted(groups.items()):
            g = np.array(g, float)
            print(f"| {name} | {len(g)} | {g[:, 1].sum() / len(flat):.3f} | {g[:, 1].mean():.3f} | "
                  f"{g[:, 0].mean():.1%} | {g[:, 2].mean():.1%} |")

    def transformed(e, a=1.0, t_numbers=1.0, t_all=1.0, calib=None):
        R = e["R"] ** a if calib is None else 1 / (1 + np.exp(-(calib[0] * logit(e["R"]) + calib[1])))
        t = t_numbers if e["numbers"] else t_all
        lp = np.log(np.clip(e["P"], 1e-12, 1.0)) / t
        P = np.exp(lp - lp.max(1, keepdims=True))
        return R, P / P.sum(1, keepdims=True)

    def recalibration(train, per_category):
        if not per_category:
            w = fit_logistic(np.concatenate([logit(e["R"]) for e in train]),
                             np.concatenate([e["answerable"] for e in train]).astype(float))
            return lambda e: w
        ws = {c: fit_logistic(np.concatenate([logit(e["R"]) for e in train if e["cat"] == c]),
                              np.concatenate([e["answerable"] for e in train if e["cat"] == c]).astype(float))
              for c in {e["cat"] for e in train}}
        return lambda e: ws[e["cat"]]

    variants = {"as recorded": {}}
    variants.update({f"R^{a}": {"a": a} for a in (0.5, 0.75, 1.5, 2.0, 3.0)})
    variants.update({f"temperature {t} (number choices)": {"t_numbers": t} for t in (1.5, 2.0, 3.0)})
    variants.update({f"temperature {t} (all answers)": {"t_all": t, "t_numbers": t} for t in (0.75, 1.5)})
    variants["relevance recalibrated"] = {"calib": False}
    variants["relevance recalibrated per category"] = {"calib": True}
    variants["one threshold per category"] = {"per_category_q": True}
    print(f"\nLeave one run out, eps {args.eps}:")
    print("| outputs | thresholds | whole-episode coverage | success | normalised steps | confident stops |")
    print("|---|---|---|---|---|---|")
    for name, kw in variants.items():
        kw = dict(kw)
        per_category_q = kw.pop("per_category_q", False)
        calib_per_category = kw.pop("calib", None)
        res, qs = [], []
        for k, held in enumerate(runs):
            train = [e for j, r in enumerate(runs) if j != k for e in r]
            fit = recalibration(train, calib_per_category) if calib_per_category is not None else None
            out = {id(e): transformed(e, calib=fit(e) if fit else None, **kw) for e in train + held}
            if per_category_q:
                q = {c: conformal_threshold([score(*out[id(e)], e["truth"]) for e in train if e["cat"] == c], args.eps)
                     for c in {e["cat"] for e in train}}
            else:
                q0 = conformal_threshold([score(*out[id(e)], e["truth"]) for e in train], args.eps)
                q = collections.defaultdict(lambda q0=q0: q0)
                qs.append(q0)
            for e in held:
                R, P = out[id(e)]
                ok, st, end = replay(e, R, P, q[e["cat"]])
                res.append((score(R, P, e["truth"]) <= q[e["cat"]], ok, st, end == "confident"))
        r = np.array(res, float)
        thresholds = "per category" if per_category_q else "/".join(f"{x:.3f}" for x in qs)
        print(f"| {name} | {thresholds} | {r[:, 0].mean():.1%} | {r[:, 1].mean():.1%} | {r[:, 2].mean():.3f} | "
              f"{r[:, 3].mean():.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
