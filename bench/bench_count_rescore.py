"""Count-head fine-tunes compared end to end on recorded episodes, without running them again.

Usage:
  python bench/bench_count_rescore.py --runs out/tune_semantic_s2 out/tune_semantic_s3 out/tune_semantic_s4 \
      --datasets out/datasets/calib-200-s2.jsonl out/datasets/calib-200-s3.jsonl out/datasets/calib-200-s4.jsonl \
      --weights v13=out/train_vlm/model-v13/builtin_vlm.pt

Weights fine-tuned from the runs' weights with only the count head trainable (`trainable: count_`) give the same
relevance, worth-exploring, direction and non-count answers (tests/test_vlm_fine_tune.py), so an episode run to its
budget (`eqa bench --no-early-stop`) takes the same path with them and only the answer probabilities of count
questions change. This re-renders every decision's newest view of the runs' count episodes (--datasets: the
question files they ran), checks that the runs' own weights reproduce the recorded probabilities, and scores them
with each --weights (refused unless every tensor outside the count head equals the runs' weights). Per weights it
prints count success at the most relevant step, success on all episodes, and conformal stopping at eps 0.05 / 0.1
/ 0.2 with each run's threshold computed from the other runs (these are tuning runs: the shipped calibrations come
from calibration seeds): whole-episode coverage, success and normalised steps, with a house-bootstrap interval of
the paired success difference to the runs' weights.
"""
from __future__ import annotations

import argparse
import copy
import warnings
from pathlib import Path

import numpy as np

EPS = (0.05, 0.1, 0.2)
BASE = "runs' weights"


def rescored(episodes: list, probs: dict) -> list:
    """Copies of (summary, rows) with each count episode's newest-view answer probabilities replaced by
    probs[(episode id, row index)]."""
    out = []
    for s, rows in episodes:
        if not any((s["episode_id"], i) in probs for i in range(len(rows))):
            out.append((s, rows))
            continue
        rows = copy.deepcopy(rows)
        for i, r in enumerate(rows):
            if (s["episode_id"], i) in probs:
                r.newest.p_answer = list(probs[(s["episode_id"], i)])
        out.append((s, rows))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", type=Path, required=True)
    ap.add_argument("--datasets", nargs="+", type=Path, required=True, help="the question files the runs ran")
    ap.add_argument("--weights", nargs="+", required=True, help="NAME=PATH of count-head fine-tunes")
    ap.add_argument("--base", type=Path, default=None, help="the runs' weights (default: the shipped file)")
    args = ap.parse_args()
    if len(args.runs) < 2:
        ap.error("give at least two runs: each run's threshold comes from the others")

    from eqa.cli import configure_process

    configure_process()  # before open3d and torch load OpenMP
    warnings.filterwarnings("ignore", message="The TBB threading layer")
    import torch
    from tqdm import tqdm

    from eqa.metrics import calibration_scores, cluster_bootstrap, conformal_coverage, vlm_rows
    from eqa.report import load_run
    from sim.recorded_views import HouseCamera, read_question_files
    from vlm.backends.builtin import BuiltinConfig, weights_path
    from vlm.builtin_model.runtime import BuiltinModel
    from vlm.conformal import calibrate
    from vlm.probs import restricted_softmax

    torch.set_num_threads(2)
    base_path = args.base or weights_path(BuiltinConfig())
    base_ckpt = torch.load(base_path, map_location="cpu", weights_only=True)
    models = {BASE: BuiltinModel(base_ckpt)}
    for spec in args.weights:
        name, _, path = spec.partition("=")
        if not path:
            ap.error(f"--weights takes NAME=PATH, got {spec!r}")
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        other = [k for k, v in ckpt["state_dict"].items()
                 if not k.startswith("count_") and not torch.equal(v, base_ckpt["state_dict"][k])]
        if other or ckpt["config"]["vocab"] != base_ckpt["config"]["vocab"]:
            where = ", ".join(other[:3]) or "vocabulary"
            raise SystemExit(f"{path}: differs from {base_path} outside the count head ({where}); its episodes "
                             "would take other paths: run them with `eqa bench`")
        models[name] = BuiltinModel(ckpt)
    questions = read_question_files(args.datasets)
    loaded = [load_run(f)[2] for f in args.runs]
    for f, eps in zip(args.runs, loaded):
        model_id = (eps[0][0].get("vlm") or {}).get("model_id", "")
        if not model_id.startswith(base_ckpt["model_id"]):
            raise SystemExit(f"{f} ran {model_id}, not the --base weights {base_ckpt['model_id']}")
    camera = HouseCamera()
    probs = {name: {} for name in models}
    worst = 0.0
    count_eps = [(s, rows) for eps in loaded for s, rows in eps if s["category"] == "count" and vlm_rows(rows)]
    for s, rows in tqdm(sorted(count_eps, key=lambda e: questions[e[0]["episode_id"]]["house_seed"]),
                        desc="count episodes", unit="ep"):
        q = questions[s["episode_id"]]
        for i, r in enumerate(rows):
            if r.p_answer is None:
                continue
            v = r.newest
            rgb, *_ = camera.render(q, v.xy[0], v.xy[1], v.yaw)
            for name, model in models.items():
                p = restricted_softmax(model.scores(rgb, [("answer", q["question"], q["choices"], None)])[0])
                probs[name][(s["episode_id"], i)] = p
            worst = max(worst, float(np.abs(probs[BASE][(s["episode_id"], i)] - r.p_answer).max()))
    print(f"{len(count_eps)} count episodes of {sum(len(e) for e in loaded)} in {len(args.runs)} runs, "
          f"{len(probs[BASE])} views re-rendered; the runs' weights reproduce the recorded "
          f"probabilities to {worst:.1e}")
    if worst > 1e-3:
        raise SystemExit("the re-rendered views do not reproduce the records: other weights or another renderer")

    results = {}
    for name in models:
        per_run = [rescored(eps, probs[name]) for eps in loaded]
        flat = [e for eps in per_run for e in eps if vlm_rows(e[1])]
        res = {"houses": [s["seed"] for s, _ in flat], "count": [s["category"] == "count" for s, _ in flat]}
        best = []
        for s, rows in flat:
            rows = vlm_rows(rows)
            top = max(range(len(rows)), key=lambda i: rows[i].relevance)  # first of the most relevant (as the agent)
            best.append(int(np.argmax(rows[top].p_answer)) == s["truth"])
        res["fixed"] = np.array(best, float)
        for eps_ in EPS:
            for k, eps in enumerate(per_run):
                others = [e for j, o in enumerate(per_run) if j != k for e in o]
                cal = calibrate(calibration_scores(others), eps_, "", "", "")
                res.setdefault(("q", eps_), []).append(cal.threshold)
                res.setdefault(("summary", eps_), []).append(conformal_coverage(eps, cal))
        results[name] = res

    boot = cluster_bootstrap(results[BASE]["houses"], 2000)
    base = results[BASE]
    print("| weights | count success (most relevant step) | all | paired difference | "
          + " | ".join(f"eps {e}: coverage / success / steps" for e in EPS) + " |")
    print("|---|---|---|---|" + "---|" * len(EPS))
    for name, res in results.items():
        c = np.array(res["count"])
        d = res["fixed"] - base["fixed"]
        lo, hi = np.percentile([d[idx].mean() for idx in boot], [2.5, 97.5])
        cells = []
        for e in EPS:
            outs = res[("summary", e)]
            n = [o["n"] for o in outs]
            cov = sum(o["coverage"]["rate"] * m for o, m in zip(outs, n)) / sum(n)
            succ = sum(o["rate"] * m for o, m in zip(outs, n)) / sum(n)
            steps = sum(o["normalized_steps"] * m for o, m in zip(outs, n)) / sum(n)
            q = "/".join(f"{t:.3f}" for t in res[("q", e)])
            cells.append(f"{cov:.1%} / {succ:.1%} / {steps:.3f} (q {q})")
        print(f"| {name} | {res['fixed'][c].mean():.1%} (n {int(c.sum())}) | {res['fixed'].mean():.1%} | "
              f"{d.mean():+.1%} [{lo:+.1%}, {hi:+.1%}] | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
