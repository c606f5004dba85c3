"""The built-in VLM on the views of real episodes, per camera: how much a narrow, noisy camera costs it.

Usage:
  python bench/bench_vlm_camera.py --runs hm-eqa=out/calib_semantic,out/calib_semantic_s1 \
      realsense=out/calib_semantic_realsense,out/calib_semantic_realsense_s1 [--out out/bench_vlm_camera]

Each run is one or more `eqa bench --no-early-stop` folders (NAME=DIR1,DIR2) of the same questions seen through
a different camera. Every decision's newest view carries the VLM's answer probabilities and relevance and the
simulator oracle's label (answerable: the target is visible from that pose). Printed per run:
- answer accuracy on answerable views (argmax p = the true answer), with a house-bootstrap 95 % interval;
- the same by question category;
- relevance AUROC (answerable against not answerable views);
- success at the fixed budget (answer at the most relevant view of the whole episode), Wilson interval;
- the share of episodes that reach an answerable view.
Views of one episode are correlated, and episodes of one house too: intervals resample whole houses.
Writes vlm_camera.json to --out.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def load_views(folders: list[Path]) -> tuple[list[dict], list[dict]]:
    """(views, episodes): one row per scored decision view and one per episode of the folders."""
    from eqa.records import read_records
    from eqa.runner import load_summaries

    views, episodes = [], []
    for folder in folders:
        for s in load_summaries(folder):
            ep_dir = folder / "episodes" / s["episode_id"]
            house = s["seed"]
            episodes.append({"house": house, "success": bool(s["success"]), "category": s["category"],
                             "reached": s["first_answerable_step"] is not None})
            truth = int(s["truth"])  # the true answer index
            for r in read_records(ep_dir / "record.jsonl"):
                if r.relevance is None or r.p_answer is None or r.truth is None or r.truth.answerable is None:
                    continue
                views.append({"house": house, "category": s["category"], "answerable": bool(r.truth.answerable),
                              "relevance": float(r.relevance),
                              "correct": int(np.argmax(r.p_answer)) == truth})
    return views, episodes


def summarize(views: list[dict], episodes: list[dict], n_boot: int) -> dict:
    from eqa.metrics import bootstrap_interval, cluster_bootstrap, rate
    from vlm.builtin_model.training.evaluate import auroc

    vis = [v for v in views if v["answerable"]]
    correct = np.array([v["correct"] for v in vis], dtype=float)
    houses = [v["house"] for v in vis]
    acc_ci = bootstrap_interval(lambda idx: float(correct[idx].mean()), cluster_bootstrap(houses, n_boot))
    by_cat = defaultdict(list)
    for v in vis:
        by_cat[v["category"]].append(v["correct"])
    rel = np.array([v["relevance"] for v in views])
    lab = np.array([v["answerable"] for v in views])
    return {
        "episodes": len(episodes), "houses": len({e["house"] for e in episodes}), "views": len(views),
        "answerable_views": len(vis),
        "answer_accuracy_answerable": float(correct.mean()) if len(correct) else float("nan"),
        "answer_accuracy_ci95_house_bootstrap": list(acc_ci),
        "answer_accuracy_by_category": {c: {"n": len(x), "accuracy": float(np.mean(x))}
                                        for c, x in sorted(by_cat.items())},
        "relevance_auroc": auroc(rel, lab),
        "success_at_budget": rate([e["success"] for e in episodes]),
        "answerable_view_reached": rate([e["reached"] for e in episodes]),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, help="NAME=DIR[,DIR...]")
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=Path("out/bench_vlm_camera"))
    args = ap.parse_args()
    results = {}
    for spec in args.runs:
        name, _, dirs = spec.partition("=")
        if not dirs:
            ap.error(f"--runs takes NAME=DIR[,DIR...], got {spec!r}")
        views, episodes = load_views([Path(d) for d in dirs.split(",")])
        if not views:
            raise SystemExit(f"{spec}: no scored views with an oracle label")
        results[name] = summarize(views, episodes, args.boot)
    first = next(iter(results.values()))
    for name, r in results.items():
        lo, hi = r["answer_accuracy_ci95_house_bootstrap"]
        print(f"{name}: {r['episodes']} episodes in {r['houses']} houses, {r['views']} views "
              f"({r['answerable_views']} answerable)")
        print(f"  answer accuracy on answerable views {r['answer_accuracy_answerable']:.1%} [{lo:.1%}, {hi:.1%}]"
              f" ({r['answer_accuracy_answerable'] - first['answer_accuracy_answerable']:+.1%} against the first)")
        print("  by category: " + ", ".join(f"{c} {x['accuracy']:.1%} (n {x['n']})"
                                            for c, x in r["answer_accuracy_by_category"].items()))
        s, reach = r["success_at_budget"], r["answerable_view_reached"]
        print(f"  relevance AUROC {r['relevance_auroc']:.3f}; success at budget {s['rate']:.1%} "
              f"[{s['ci95'][0]:.1%}, {s['ci95'][1]:.1%}]; answerable view reached {reach['rate']:.1%}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vlm_camera.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out / 'vlm_camera.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
