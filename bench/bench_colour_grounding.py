"""How much of the builtin VLM's colour error is where it looks: colour answers with the colour head pooled by the
grounded attention head (as the model does) against pooled over the question's true target cells.

Usage:
  .venv/bin/python bench/bench_colour_grounding.py [--weights vlm/weights/builtin_vlm.pt] [--answer-checks]

On the held-out views of a train-vlm config's evaluation data (as bench/compare_vlm_builtin.py; --answer-checks:
questions made with the one-reading checks), the visible pairs whose answer names a colour and whose view shows a
target cell: per pair the answer, the colour head's own pick among the named colours, and both again with the
colour head pooled uniformly over the target cells (the grounding label, from the renderer's instance ids) in place
of the attention; the attention mass on the target cells, and where the rest goes (within two cells of a target
cell, or further: another thing). Prints accuracy overall and by attention mass.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

MASS_BINS = (0.0, 0.25, 0.5, 0.75, 1.0)
RING_CELLS = 2  # cells around the target cells counted as "near" (the attention blurred, not another thing)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="vlm/weights/builtin_vlm.pt")
    ap.add_argument("--config", default="train_vlm", help="train-vlm config whose eval_data names the views")
    ap.add_argument("--answer-checks", action="store_true", help="questions made with the one-reading checks")
    ap.add_argument("--work-dir", default="out/train_vlm", help="train-vlm work folder (data caches)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    from scipy.ndimage import binary_dilation

    from eqa.commands.train_vlm import held_out_data
    from vlm.backends.builtin import check_checkpoint
    from vlm.builtin_model.model import COLOUR_EPS, model_from_checkpoint
    from vlm.builtin_model.training import train as T

    torch.set_num_threads(args.threads)
    ds = held_out_data(args.config, args.answer_checks, Path(args.work_dir), print)
    path = Path(args.weights)
    ckpt = check_checkpoint(torch.load(path, map_location="cpu", weights_only=True), path)
    model, vocab = model_from_checkpoint(ckpt)
    data = T.Batches(ds, vocab, model.config)
    fh, fw = data.grid
    weight = float(model.colour_log_weight.detach().exp())
    cols = {k: [] for k in ("answer", "head", "oracle_answer", "oracle_head", "mass", "near", "far")}
    with torch.inference_mode():
        for s in range(0, len(data.images), 64):
            b = data.batch(np.arange(s, min(len(data.images), s + 64)))
            out = T.run_model(model, b)
            truth = b["answer"]
            truth_colour = b["c_colours"].gather(1, truth.view(-1, 1)).squeeze(1)
            cells = b["target_cells"].bool()
            rows = torch.nonzero((b["relevant"] > 0.5) & (truth_colour >= 0) & cells.any(1)).squeeze(1)
            if not len(rows):
                continue
            named = b["c_colours"][rows] >= 0
            idx = b["c_colours"][rows].clamp(min=0)
            m = cells[rows].float()
            oracle = torch.einsum("pn,pnc->pc", m / m.sum(1, keepdim=True),
                                  out["cell_colours"][b["pair_view"][rows]])
            seen = torch.sigmoid(out["relevance"][rows]).unsqueeze(1)
            logits = out["answer"][rows]
            term = weight * seen * named

            def picked(pooled):
                return torch.where(named, pooled.gather(1, idx), torch.full_like(idx, -1.0, dtype=pooled.dtype))

            oracle_logits = (logits - term * torch.log(out["colour"][rows].gather(1, idx) + COLOUR_EPS)
                             + term * torch.log(oracle.gather(1, idx) + COLOUR_EPS))
            attn = torch.softmax(out["ground_logits"][rows], -1).numpy()
            target = cells[rows].numpy()
            near = np.stack([binary_dilation(t.reshape(fh, fw), iterations=RING_CELLS).ravel() for t in target])
            cols["answer"].append((logits.argmax(1) == truth[rows]).numpy())
            cols["oracle_answer"].append((oracle_logits.argmax(1) == truth[rows]).numpy())
            cols["head"].append((picked(out["colour"][rows]).argmax(1) == truth[rows]).numpy())
            cols["oracle_head"].append((picked(oracle).argmax(1) == truth[rows]).numpy())
            cols["mass"].append((attn * target).sum(1))
            cols["near"].append((attn * (near & ~target)).sum(1))
            cols["far"].append((attn * ~near).sum(1))
    r = {k: np.concatenate(v) for k, v in cols.items()}
    houses = len({q["house_seed"] for q in ds["questions"]})
    print(f"{ckpt['model_id']}: {len(r['mass'])} visible colour pairs of {houses} held-out houses; "
          f"one-reading checks {'on' if args.answer_checks else 'as configured'}")
    print("| pooling | answers | colour head's own pick |")
    print("|---|---|---|")
    print(f"| grounded attention (the model) | {r['answer'].mean():.1%} | {r['head'].mean():.1%} |")
    print(f"| true target cells | {r['oracle_answer'].mean():.1%} | {r['oracle_head'].mean():.1%} |")
    print("\n| attention mass on the target cells | pairs | answers | answers, target cells | attention near / far |")
    print("|---|---|---|---|---|")
    for lo, hi in zip(MASS_BINS[:-1], MASS_BINS[1:]):
        sel = (r["mass"] >= lo) & ((r["mass"] < hi) if hi < 1.0 else (r["mass"] <= hi))
        if sel.any():
            print(f"| {lo:.2f}-{hi:.2f} | {sel.sum()} | {r['answer'][sel].mean():.1%} | "
                  f"{r['oracle_answer'][sel].mean():.1%} | {r['near'][sel].mean():.2f} / {r['far'][sel].mean():.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
