"""The builtin VLM's colour check of relevance (`vlm.builtin.named_colour_power`) replayed on recorded episodes.

Usage:
  python bench/bench_colour_check.py --runs out/tune_semantic_s2 out/tune_semantic_s3 \
      --datasets out/datasets/calib-200-s2.jsonl out/datasets/calib-200-s3.jsonl --powers 0 0.25 0.5 1

--runs: `eqa bench --no-early-stop` folders of built-in simulator questions, run with the check off
(named_colour_power=0); --datasets: the question files they ran. For every episode whose question names one
colour (location questions), each decision's newest view is rendered again from its recorded pose and its
relevance asked again with each power; the answer is then read, as the fixed-budget rule does, at the most
relevant step (the recorded answer probabilities: the check does not change answers). Prints per power the
success of those episodes, how often the most relevant step is answerable (the simulator oracle of the records),
and the paired difference to power 0 with a house-bootstrap 95 % interval. The trajectories stay those of the
recorded run (the check also changes which targets the robot approaches); a live run measures that. Choose the
power on tuning-split runs only.
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np


def main() -> int:
    from eqa.cli import configure_process

    configure_process()  # before open3d and torch load OpenMP: renders must not spin against the model's calls
    warnings.filterwarnings("ignore", message="The TBB threading layer")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", type=Path, required=True)
    ap.add_argument("--datasets", nargs="+", type=Path, required=True, help="the question files the runs ran")
    ap.add_argument("--powers", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--weights", default=None, help="builtin_vlm.pt the runs used (default: the shipped file)")
    args = ap.parse_args()

    import torch
    from tqdm import tqdm

    from eqa.metrics import bootstrap_interval, cluster_bootstrap, vlm_rows
    from eqa.report import load_runs
    from sim.recorded_views import HouseCamera, read_question_files
    from vlm.backends.builtin import BuiltinConfig, load_builtin
    from vlm.builtin_model.runtime import named_colour

    torch.set_num_threads(2)
    if 0.0 not in args.powers:
        args.powers.insert(0, 0.0)
    models = {p: load_builtin(BuiltinConfig(weights=args.weights, named_colour_power=p)) for p in args.powers}
    questions = read_question_files(args.datasets)
    for folder in args.runs:
        model_id = json.loads((folder / "vlm.json").read_text()).get("model_id", "")
        if "+named-colour" in model_id:
            raise SystemExit(f"{folder} ran with the colour check on ({model_id}); give runs made without it")
    _name, _summaries, episodes = load_runs(args.runs)
    held = [(s, vlm_rows(rows)) for s, rows in episodes if named_colour(questions[s["episode_id"]]["question"]) >= 0]
    held = [(s, rows) for s, rows in held if rows]
    if not held:
        raise SystemExit("no episodes of questions that name one colour in these runs")
    camera = HouseCamera()
    right = {p: [] for p in args.powers}
    answerable = {p: [] for p in args.powers}
    for s, rows in tqdm(held, desc="episodes", unit="ep"):
        q = questions[s["episode_id"]]
        relevance = {p: [] for p in args.powers}
        for r in rows:
            v = [v for v in r.views if v.p_answer is not None][-1]
            rgb, *_ = camera.render(q, v.xy[0], v.xy[1], v.yaw)
            for p, model in models.items():
                relevance[p].append(float(model.scores(rgb, [("relevance", q["question"], (), None)])[0][0]))
        for p in args.powers:
            best = rows[int(np.argmax(relevance[p]))]
            right[p].append(int(np.argmax(best.p_answer)) == s["truth"])
            answerable[p].append(bool(best.truth.answerable))
    boot = cluster_bootstrap([s["seed"] for s, _ in held], 2000)
    base = np.array(right[0.0], dtype=float)
    print(f"{len(held)} episodes of questions naming one colour, {len({s['seed'] for s, _ in held})} houses "
          f"({', '.join(str(r) for r in args.runs)})")
    print("| named_colour_power | success | most relevant step answerable | paired difference to 0 |")
    print("|---|---|---|---|")
    for p in args.powers:
        ok = np.array(right[p], dtype=float)
        diff = ok - base
        lo, hi = bootstrap_interval(lambda idx: diff[idx].mean(), boot)
        print(f"| {p:g} | {ok.mean():.1%} | {np.mean(answerable[p]):.1%} | {diff.mean():+.1%} [{lo:+.1%}, {hi:+.1%}] |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
