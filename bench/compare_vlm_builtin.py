"""Compare builtin VLM checkpoints on the same held-out test-split views: the first --weights is the baseline
(default: the shipped file), every other one is printed with its difference to it. The views are those of a
train-vlm config's evaluation data (`eval_data`, default configs/train_vlm.yaml), made and cached in the
train-vlm work folder like `eqa train-vlm` makes them; --answer-checks makes their questions with the question
generator's one-reading checks (the generator's default) instead of the config's setting. The phantom-colour rows
ask each relevant location view about colours it does not show, the phantom-kind rows ask each view about a thing
of its main colour of a kind its house lacks (training.phantoms): the relevance AUROC of the real relevant
location pairs against those. --named-colour-power checks relevance against the colour a question names as
`vlm.builtin.named_colour_power` does (evaluate.colour_checked).

    .venv/bin/python bench/compare_vlm_builtin.py --weights vlm/weights/builtin_vlm.pt \\
        out/train_vlm/model-4/builtin_vlm.pt --answer-checks --json out/compare_vlm.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROWS = (("visible answers", "answer_acc_visible"), ("  count", ("by_category", "count")),
        ("  existence", ("by_category", "existence")), ("  identification", ("by_category", "identification")),
        ("    colour", ("by_template", "colour")), ("  location", ("by_category", "location")),
        ("  state", ("by_category", "state")), ("not visible", "answer_acc_not_visible"),
        ("chance, not visible", "chance_not_visible"), ("relevance AUROC", "relevance_auroc"),
        ("ECE, visible", "ece_visible"), ("count head alone", "count_head_acc_visible"),
        ("colour head alone", "colour_head_acc_visible"), ("phantom-colour AUROC", "phantom_auroc"),
        ("  location relevance, mean", "location_mean_relevance"),
        ("  phantom relevance, mean", "phantom_mean_relevance"), ("phantom-kind AUROC", "kind_phantom_auroc"),
        ("  phantom-kind relevance, mean", "kind_phantom_mean_relevance"))


PHANTOMS_PER_PAIR = 2  # phantom-colour questions per relevant location pair (training.phantoms)


def value(metrics: dict, key) -> float | None:
    if isinstance(key, tuple):
        return metrics[f"answer_acc_visible_{key[0]}"].get(key[1])
    return metrics.get(key)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", nargs="+", default=["vlm/weights/builtin_vlm.pt"], help="checkpoints; first: baseline")
    ap.add_argument("--config", default="train_vlm", help="train-vlm config whose eval_data names the views")
    ap.add_argument("--answer-checks", action="store_true", help="questions made with the one-reading checks")
    ap.add_argument("--work-dir", default="out/train_vlm", help="train-vlm work folder (data caches)")
    ap.add_argument("--named-colour-power", type=float, default=0.0,
                    help="relevance checked against a named colour (vlm.builtin.named_colour_power; 0: off)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write every checkpoint's metrics here")
    args = ap.parse_args()

    import torch

    from eqa.commands.train_vlm import held_out_data
    from vlm.backends.builtin import check_checkpoint
    from vlm.builtin_model.model import model_from_checkpoint
    from vlm.builtin_model.training import evaluate as E
    from vlm.builtin_model.training.phantoms import add_phantom_colours, add_phantom_kinds, phantom_metrics

    torch.set_num_threads(args.threads)
    ds = held_out_data(args.config, args.answer_checks, Path(args.work_dir), print)
    with_phantoms = add_phantom_kinds(add_phantom_colours(ds, PHANTOMS_PER_PAIR, seed=0), 1, seed=0)
    real = with_phantoms["pair_question"] < len(ds["questions"])  # ds's own pairs, in ds's order
    results = {}
    for path in args.weights:
        ckpt = check_checkpoint(torch.load(path, map_location="cpu", weights_only=True), Path(path))
        model, vocab = model_from_checkpoint(ckpt)
        pred = E.predict(model, vocab, with_phantoms)  # one pass: the real pairs keep their order among them
        if args.named_colour_power > 0:
            pred = E.colour_checked(pred, with_phantoms, args.named_colour_power)
        results[path] = E.evaluate({k: None if v is None else v[real] for k, v in pred.items()}, ds)
        results[path].update(phantom_metrics(pred["relevance"], with_phantoms))
        results[path]["model_id"] = ckpt["model_id"]
    m0 = results[args.weights[0]]
    print(f"{m0['houses']} test-split houses, {m0['questions']} questions, {m0['pairs']} pairs "
          f"({m0['visible_pairs']} visible); one-reading checks {'on' if args.answer_checks else 'as configured'}; "
          f"named-colour power {args.named_colour_power:g}")
    print("| | " + " | ".join(results[p]["model_id"][-12:] for p in args.weights) + " |")
    print("|---" * (len(args.weights) + 1) + "|")
    for label, key in ROWS:
        base = value(m0, key)
        cells = []
        for p in args.weights:
            v = value(results[p], key)
            if v is None:
                cells.append("-")
            elif p == args.weights[0] or base is None:
                cells.append(f"{v:.3f}")
            else:
                cells.append(f"{v:.3f} ({v - base:+.3f})")
        print(f"| {label} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
