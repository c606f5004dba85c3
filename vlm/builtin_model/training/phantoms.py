"""Phantom-colour questions: hard negatives that teach relevance to read the colour a question names.

A location question names its target by colour and kind ("Where is the white sink?"); a house may hold
another thing of the same kind in another colour, and a view of that one must not count as relevant. The
training houses rarely show that case, so it is made: for a view relevant to a location question, the same
question with another colour word ("Where is the brown sink?") is a pair labelled not relevant, not worth
exploring, without a direction and without target cells. Only colours that no object block of the view shows
(the data's block colours: surface colours before lighting) are used, so no thing of the phantom colour can be
in view and the label is exact.
"""
from __future__ import annotations

import re

import numpy as np

from vlm.builtin_model.model import COLOUR_WORDS
from vlm.builtin_model.training.data import N_POINTS

LOCATION_TEXT = re.compile(r"^Where is the (\w+) (.+)\?$")


def named_colour(question: dict) -> int:
    """COLOUR_WORDS index of the colour a location question names, -1 for other questions."""
    m = LOCATION_TEXT.match(question["question"]) if question.get("template") == "where_is" else None
    return COLOUR_WORDS.index(m.group(1)) if m and m.group(1) in COLOUR_WORDS else -1


def add_phantom_colours(ds: dict, per_pair: int, seed: int) -> dict:
    """A copy of dataset `ds` (data.merge layout) with up to `per_pair` phantom-colour pairs for every relevant
    pair of a location question, colours drawn (seeded) among those absent from the pair's view. Phantom
    questions are new question rows (one per question and colour); pairs stay stored view-major."""
    if per_pair <= 0:
        return ds
    rng = np.random.default_rng(seed)
    questions = list(ds["questions"])
    colour_of = np.array([named_colour(q) for q in questions])
    pairs = np.flatnonzero(ds["relevant"] & (colour_of[ds["pair_question"]] >= 0))
    phantom_q: dict[tuple[int, int], int] = {}
    new_view, new_q = [], []
    for p in pairs:
        v, qi = int(ds["pair_view"][p]), int(ds["pair_question"][p])
        shown = np.unique(ds["block_colours"][v])
        absent = [c for c in range(len(COLOUR_WORDS)) if c not in shown and c != colour_of[qi]]
        for c in rng.permutation(absent)[:per_pair]:
            key = (qi, int(c))
            if key not in phantom_q:
                q = dict(questions[qi])
                q["question"] = f"Where is the {COLOUR_WORDS[c]} {LOCATION_TEXT.match(q['question']).group(2)}?"
                q["template"], q["id"] = "where_is_phantom", f"{q['id']}-phantom-{COLOUR_WORDS[c]}"
                phantom_q[key] = len(questions)
                questions.append(q)
            new_view.append(v)
            new_q.append(phantom_q[key])
    n = len(new_view)
    if n == 0:
        return ds
    out = dict(ds)
    out["questions"] = questions
    extra = {"pair_view": np.asarray(new_view, ds["pair_view"].dtype),
             "pair_question": np.asarray(new_q, ds["pair_question"].dtype),
             "relevant": np.zeros(n, bool), "worth": np.zeros(n, bool),
             "dir_label": np.full(n, -1, ds["dir_label"].dtype),
             "point_dist": np.full((n, N_POINTS), np.inf, ds["point_dist"].dtype),
             "target_cells": np.zeros((n, ds["target_cells"].shape[1]), ds["target_cells"].dtype)}
    order = np.argsort(np.concatenate([ds["pair_view"], extra["pair_view"]]), kind="stable")
    for k, rows in extra.items():
        out[k] = np.concatenate([ds[k], rows])[order]
    if "centre_pair" in ds:  # old pair index -> its new position
        where = np.empty(len(order), np.int64)
        where[order] = np.arange(len(order))
        out["centre_pair"] = where[ds["centre_pair"]]
    return out


def phantom_metrics(relevance: np.ndarray, ds: dict) -> dict:
    """How well per-pair `relevance` of a dataset made by add_phantom_colours tells a location question's
    relevant views from the same views asked about a phantom colour: AUROC of relevant location pairs against
    phantom pairs, and the phantom pairs' mean relevance."""
    from vlm.builtin_model.training.evaluate import auroc

    template = np.array([q.get("template") for q in ds["questions"]])[ds["pair_question"]]
    real = ds["relevant"] & (template == "where_is")
    phantom = template == "where_is_phantom"
    keep = real | phantom
    return {"phantom_auroc": auroc(relevance[keep], real[keep]), "phantom_pairs": int(phantom.sum()),
            "phantom_mean_relevance": float(relevance[phantom].mean()) if phantom.any() else float("nan"),
            "location_mean_relevance": float(relevance[real].mean()) if real.any() else float("nan")}
