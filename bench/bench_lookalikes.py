"""What the most relevant view of an episode shows when it is not answerable: a look-alike, part of the target, or
neither. The most relevant view is where a stop without confidence reads its answer (StopConfig.answer_rule
"most-relevant-step"), so a look-alike ranked above the target (the grey sink for "Where is the white sink?")
answers for the wrong thing.

Usage:
  python bench/bench_lookalikes.py --runs out/tune_semantic_s2 [out/tune_semantic_s3 ...]

--runs: `eqa bench --no-early-stop` folders of built-in simulator questions (several are pooled). For every episode
that reaches an answerable view (simulator oracle) but whose most relevant view is not answerable, that view is cast
again at the question generator's visibility resolution (sim.questions.HouseLabeller) and classed:
- look-alike: another instance with a target's display name shows with at least the generator's min_pixels;
- part of the target: some target pixels, too few to answer;
- neither.
Questions whose targets are not objects (doors, "No" existence's room floor) are counted apart. Prints, per
question category, episodes, those reaching an answerable view, those whose most relevant view is answerable, and
the classes with how many of them were answered right.
"""
from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

CLASSES = ("look-alike", "part of the target", "neither", "targets not objects")


def view_class(scene, labeller, target_ids: list[int], pose: np.ndarray, min_pixels: float) -> str:
    """The class (CLASSES) of one view at base pose (x, y, yaw; world m, rad)."""
    from vlm.builtin_model.training.data import look_alikes

    if not target_ids or any(scene.object_by_id(i) is None for i in target_ids):
        return "targets not objects"
    others = [o.instance_id for o in look_alikes(scene, target_ids)]
    ids, _, _ = labeller.caster.cast(pose[None])
    if others and labeller.caster.pixel_counts(ids, others).max() >= min_pixels:
        return "look-alike"
    return "part of the target" if labeller.caster.pixel_counts(ids, target_ids).max() > 0 else "neither"


def main() -> int:
    warnings.filterwarnings("ignore", message="The TBB threading layer")
    from eqa.metrics import vlm_rows
    from eqa.report import load_runs
    from sim.config import SimConfig
    from sim.house import generate_house
    from sim.questions import HouseLabeller, QuestionConfig, load_jsonl

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, nargs="+", required=True)
    args = ap.parse_args()

    questions = {}
    for run in args.runs:
        for d in json.loads((run / "datasets.json").read_text()):
            questions.update({q.id: q for q in load_jsonl(d["path"])})
    name, _, episodes = load_runs(args.runs)
    sim, qcfg = SimConfig(), QuestionConfig()
    houses: dict = {}
    tally: dict[str, Counter] = {}
    for summary, records in episodes:
        rows = vlm_rows(records)
        if not rows:
            continue
        c = tally.setdefault(summary["category"], Counter())
        c["episodes"] += 1
        if not any(r.truth.answerable for r in rows):
            continue
        c["reached"] += 1
        best = rows[int(np.argmax([r.relevance for r in rows]))]
        if best.truth.answerable:
            c["answerable"] += 1
            continue
        q = questions[summary["episode_id"]]
        if q.house_seed not in houses:
            scene = generate_house(q.house_seed, q.n_rooms, sim.house, sim.robot)
            houses = {q.house_seed: (scene, HouseLabeller(scene, sim, qcfg))}  # episodes come house by house
        scene, labeller = houses[q.house_seed]
        view = best.newest
        kind = view_class(scene, labeller, list(q.target_ids), np.array([*view.xy, view.yaw]), qcfg.min_pixels)
        c[kind] += 1
        c[kind + " right"] += int(np.argmax(best.p_answer) == summary["truth"])
    print(f"{name}: the most relevant view of episodes that reach an answerable view")
    print("| category | episodes | reached | most relevant view answerable | " + " | ".join(CLASSES) + " |")
    print("|---" * (4 + len(CLASSES)) + "|")
    total = Counter()
    for cat in sorted(tally) + ["all"]:
        c = total if cat == "all" else tally[cat]
        if cat != "all":
            total.update(c)
        cells = [f"{c[k]} ({c[k + ' right']} right)" for k in CLASSES]
        print(f"| {cat} | {c['episodes']} | {c['reached']} | {c['answerable']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
