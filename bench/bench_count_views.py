"""Built-in VLM weights compared on the same views: the answerable views that episodes of count questions met.

Usage:
  python bench/bench_count_views.py --runs out/tune_semantic_s2 out/tune_semantic_s3 \
      --datasets out/datasets/calib-200-s2.jsonl out/datasets/calib-200-s3.jsonl \
      --weights v6=vlm/weights/builtin_vlm.pt v12=out/train_vlm/model-v12/builtin_vlm.pt

End-to-end success mixes what a model reads with where its episodes went. This re-renders, for every count question
of the runs (`eqa bench --no-early-stop` folders of built-in simulator questions; --datasets: the question files
they ran), each decision's newest view that the simulator oracle marked answerable, and asks every model its
question there: once at the camera's resolution (resized inside the model, as in episodes) and once rendered at the
model's 224x168 input (as its training and held-out views are). Prints answer accuracy per model, resolution and
count template, and how many views show every counted thing's centre (the generator's rule asks them all in view).
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

LOW = (224, 168)


def count_views(runs: list[Path], questions: dict) -> list[tuple[dict, tuple[float, float, float]]]:
    """(question, base pose x, y, yaw) of every answerable newest view of the runs' count episodes."""
    from eqa.records import read_records
    from eqa.runner import load_summaries

    out = []
    for folder in runs:
        for s in load_summaries(folder):
            if s["category"] != "count":
                continue
            q = questions[s["episode_id"]]
            for r in read_records(folder / "episodes" / s["episode_id"] / "record.jsonl"):
                if r.p_answer is None or not r.truth.answerable:
                    continue
                v = [v for v in r.views if v.p_answer is not None][-1]
                out.append((q, (v.xy[0], v.xy[1], v.yaw)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", type=Path, required=True)
    ap.add_argument("--datasets", nargs="+", type=Path, required=True, help="the question files the runs ran")
    ap.add_argument("--weights", nargs="+", required=True, help="NAME=PATH of builtin_vlm.pt files")
    args = ap.parse_args()

    import torch

    from sim.recorded_views import HouseCamera, read_question_files
    from vlm.builtin_model.runtime import BuiltinModel
    from vlm.builtin_model.training.data import CENTRE_MIN_PIXELS, centre_counts

    torch.set_num_threads(2)
    models = {}
    for spec in args.weights:
        name, _, path = spec.partition("=")
        if not path:
            ap.error(f"--weights takes NAME=PATH, got {spec!r}")
        models[name] = BuiltinModel(torch.load(path, map_location="cpu", weights_only=True))
    questions = read_question_files(args.datasets)
    views = count_views(args.runs, questions)
    if not views:
        raise SystemExit("no answerable views of count questions in these runs")
    cameras = {"camera": HouseCamera(), "224x168": HouseCamera(width=LOW[0], height=LOW[1])}
    full = cameras["camera"]
    centre_min = CENTRE_MIN_PIXELS * LOW[0] * LOW[1] / (full.width * full.height)
    right = defaultdict(list)
    templates, all_centres = [], []
    for q, (x, y, yaw) in views:
        for size, camera in cameras.items():
            rgb, _depth, ids, _tris = camera.render(q, x, y, yaw)
            if size == "224x168":
                all_centres.append(int(centre_counts(ids, q["target_ids"], centre_min).sum()) == len(q["target_ids"]))
            for name, model in models.items():
                scores = model.scores(rgb, [("answer", q["question"], q["choices"], None)])[0]
                right[(name, size)].append(int(np.argmax(scores)) == q["answer_index"])
        templates.append(q["template"])
    t = np.array(templates)
    names = sorted(set(t))
    print(f"{len(views)} answerable views of count questions in {len(args.runs)} runs; every counted centre in view: "
          f"{np.mean(all_centres):.1%}")
    print("| weights | resolution | all | " + " | ".join(f"{n} (n {int((t == n).sum())})" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for (name, size), ok in right.items():
        ok = np.array(ok)
        print(f"| {name} | {size} | {ok.mean():.1%} | " + " | ".join(f"{ok[t == n].mean():.1%}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
