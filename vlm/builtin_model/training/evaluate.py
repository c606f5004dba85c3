"""Held-out evaluation of the builtin VLM (`eqa train-vlm`): per-pair predictions, accuracy by category
and template, relevance / worth-exploring AUROC, direction agreement, calibration and its diagram."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from vlm.builtin_model.model import BuiltinVLMNet, choice_colour, choice_number
from vlm.builtin_model.training.data import N_POINTS
from vlm.builtin_model.training.train import Batches, run_model
from vlm.builtin_model.vocab import Vocab
from vlm.queries import MAX_CHOICES


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); nan with one class."""
    from scipy.stats import rankdata

    labels = labels.astype(bool)
    n1, n0 = labels.sum(), (~labels).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@torch.inference_mode()
def predict(model: BuiltinVLMNet, vocab: Vocab, ds: dict, views_per_step: int = 64) -> dict:
    """Per pair: answer probs (Q, 6), relevance / worth probability, direction probs and the colour head's pooled
    colour probabilities (P, len(COLOUR_WORDS))."""
    data = Batches(ds, vocab, model.config)
    V = len(data.images)
    P = len(data.pair_view)
    ans = np.zeros((P, MAX_CHOICES))
    rel, worth = np.zeros(P), np.zeros(P)
    dirp = np.zeros((P, N_POINTS))
    colour = None
    count = np.full(P, np.nan)  # the count head's expected count, on the rows it ran on
    for s in range(0, V, views_per_step):
        b = data.batch(np.arange(s, min(V, s + views_per_step)))
        out = run_model(model, b)
        idx = b["pairs"].numpy()
        ans[idx] = torch.softmax(out["answer"], -1).numpy()
        rel[idx] = torch.sigmoid(out["relevance"]).numpy()
        worth[idx] = torch.sigmoid(out["worth"]).numpy()
        dirp[idx] = torch.softmax(out["direction"], -1).numpy()
        if colour is None:
            colour = np.zeros((P, out["colour"].shape[1]))
        colour[idx] = out["colour"].numpy()
        if "count_rows" in out:
            count[idx[out["count_rows"].numpy()]] = out["count_mean"].numpy()
    return {"answer": ans, "relevance": rel, "worth": worth, "direction": dirp, "colour": colour,
            "count": count if np.isfinite(count).any() else None}


def colour_checked(pred: dict, ds: dict, power: float) -> dict:
    """`pred` with the relevance of pairs whose question names one colour checked against it like the runtime's
    named_colour_power does (runtime.colour_factor)."""
    from vlm.builtin_model.runtime import colour_factor, named_colour

    named = np.array([named_colour(q["question"]) for q in ds["questions"]])[ds["pair_question"]]
    rows = np.flatnonzero(named >= 0)
    factor = np.ones(len(named))
    factor[rows] = colour_factor(pred["colour"][rows, named[rows]], power)
    return {**pred, "relevance": pred["relevance"] * factor}


def evaluate(pred: dict, ds: dict, n_bins: int = 10) -> dict:
    qs = ds["questions"]
    pq = ds["pair_question"]
    truth = np.array([qs[i]["answer_index"] for i in pq])
    n_ch = np.array([len(qs[i]["choices"]) for i in pq])
    cats = np.array([qs[i]["category"] for i in pq])
    vis = ds["relevant"].astype(bool)
    pa = pred["answer"]
    correct = pa.argmax(1) == truth
    conf = pa.max(1)
    m: dict = {"pairs": int(len(pq)), "views": int(len(ds["images"])), "questions": len(qs),
               "houses": len({q["house_seed"] for q in qs}), "visible_pairs": int(vis.sum())}
    m["answer_acc_visible"] = float(correct[vis].mean())
    m["answer_acc_not_visible"] = float(correct[~vis].mean())
    m["chance_not_visible"] = float((1.0 / n_ch[~vis]).mean())
    m["chance_visible"] = float((1.0 / n_ch[vis]).mean())
    m["mean_conf_visible"] = float(conf[vis].mean())
    m["mean_conf_not_visible"] = float(conf[~vis].mean())
    m["mean_uniform_conf_not_visible"] = m["chance_not_visible"]
    m["answer_acc_visible_by_category"] = {str(c): float(correct[vis & (cats == c)].mean())
                                          for c in sorted(set(cats)) if (vis & (cats == c)).any()}
    if pred.get("colour") is not None:  # the colour head's own pick among the named colours, visible colour pairs
        named = colour_table(qs)[pq]
        rows = vis & (named[np.arange(len(pq)), truth] >= 0)
        score = np.where(named >= 0, np.take_along_axis(pred["colour"], np.maximum(named, 0), 1), -1.0)
        m["colour_head_acc_visible"] = float((score[rows].argmax(1) == truth[rows]).mean())
    if pred.get("count") is not None:  # the count head's own rounded count, visible count pairs
        said = np.array([choice_number(q["choices"][q["answer_index"]]) for q in qs])[pq]
        rows = vis & np.isfinite(pred["count"]) & (said >= 0)
        m["count_head_acc_visible"] = float((np.rint(pred["count"][rows]) == said[rows]).mean())
        m["count_head_mean_abs_error_visible"] = float(np.abs(pred["count"][rows] - said[rows]).mean())
    templates = np.array([qs[i].get("template", qs[i]["category"]) for i in pq])
    m["answer_acc_visible_by_template"] = {str(t): float(correct[vis & (templates == t)].mean())
                                          for t in sorted(set(templates)) if (vis & (templates == t)).any()}
    m["relevance_auroc"] = auroc(pred["relevance"], vis)
    m["worth_auroc"] = auroc(pred["worth"], ds["worth"].astype(bool))
    ok = ds["dir_label"] >= 0
    m["direction_pairs"] = int(ok.sum())
    choice = pred["direction"][ok].argmax(1)
    agree = choice == ds["dir_label"][ok]
    m["direction_agreement"] = float(agree.mean())
    pdist = ds["point_dist"][ok]
    srt = np.sort(pdist, axis=1)
    m["direction_agreement_gap_ge_1m"] = float(agree[(srt[:, 1] - srt[:, 0]) >= 1.0].mean())
    picked = np.take_along_axis(pdist, choice[:, None], 1)[:, 0]
    m["direction_agreement_ties"] = float((picked == srt[:, 0]).mean())  # any of several equally best points
    # calibration of the answer confidence on visible views
    bins = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(conf[vis], bins) - 1, 0, n_bins - 1)
    rows, ece = [], 0.0
    for k in range(n_bins):
        sel = which == k
        if sel.any():
            a, c = float(correct[vis][sel].mean()), float(conf[vis][sel].mean())
            ece += sel.mean() * abs(a - c)
            rows.append({"bin": [float(bins[k]), float(bins[k + 1])], "n": int(sel.sum()), "acc": a, "conf": c})
    m["ece_visible"] = float(ece)
    m["reliability_visible"] = rows
    return m


def colour_table(questions: list[dict]) -> np.ndarray:
    """(Q, MAX_CHOICES) int: the COLOUR_WORDS index each choice names (choice_colour), -1 otherwise."""
    table = np.full((len(questions), MAX_CHOICES), -1, dtype=int)
    for i, q in enumerate(questions):
        table[i, :len(q["choices"])] = [choice_colour(c) for c in q["choices"]]
    return table


def reliability_png(metrics: dict, path: Path, title: str = "builtin VLM answer confidence (visible views)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = metrics["reliability_visible"]
    fig, ax = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [3, 2]})
    centres = [(r["bin"][0] + r["bin"][1]) / 2 for r in rows]
    ax[0].bar(centres, [r["acc"] for r in rows], width=0.09, color="tab:blue", alpha=0.8, label="accuracy")
    ax[0].plot([r["conf"] for r in rows], [r["acc"] for r in rows], "o", color="tab:orange", label="mean confidence")
    ax[0].plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax[0].set_xlabel("confidence (max answer probability)")
    ax[0].set_ylabel("accuracy")
    ax[0].set_xlim(0, 1)
    ax[0].set_ylim(0, 1)
    ax[0].set_title(f"{title}\nECE {metrics['ece_visible']:.3f}", fontsize=9)
    ax[0].legend(fontsize=8, loc="upper left")
    ax[1].bar(centres, [r["n"] for r in rows], width=0.09, color="gray")
    ax[1].set_xlabel("confidence")
    ax[1].set_ylabel("pairs")
    ax[1].set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)




def dump_metrics(metrics: dict, path: Path) -> None:
    Path(path).write_text(json.dumps(metrics, indent=2, sort_keys=True))
