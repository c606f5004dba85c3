"""Phantom questions: hard negatives that teach relevance to read the colour and the kind a question names.

A location question names its target by colour and kind ("Where is the white sink?"); a house may hold
another thing of the same kind in another colour, and a view of that one must not count as relevant. The
training houses rarely show that case, so it is made: for a view relevant to a location question, the same
question with another colour word ("Where is the brown sink?") is a pair labelled not relevant, not worth
exploring, without a direction and without target cells. Only colours that no object block of the view shows
(the data's block colours: surface colours before lighting) are used, so no thing of the phantom colour can be
in view and the label is exact.

Phantom kinds do the same for the kind: a view whose objects show some colour most is asked about a thing of
that colour and of a kind the house has none of ("Where is the green chair?" where a green bed is in view but
the house holds no chair), labelled not relevant; exact since no such thing exists in the house.
"""
from __future__ import annotations

import re

import numpy as np

from vlm.builtin_model.model import COLOUR_WORDS
from vlm.builtin_model.training.data import N_POINTS

LOCATION_TEXT = re.compile(r"^Where is the (\w+) (.+)\?$")
MIN_COLOUR_BLOCKS = 200  # phantom kinds: blocks (2x2 pixels) of a view's most shown object colour, at least


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
    phantom_q: dict = {}
    new_view, new_q = [], []
    for p in pairs:
        v, qi = int(ds["pair_view"][p]), int(ds["pair_question"][p])
        shown = np.unique(ds["block_colours"][v])
        absent = [c for c in range(len(COLOUR_WORDS)) if c not in shown and c != colour_of[qi]]
        name = LOCATION_TEXT.match(questions[qi]["question"]).group(2)
        for c in rng.permutation(absent)[:per_pair]:
            new_view.append(v)
            new_q.append(_phantom_question(questions, phantom_q, qi, int(c), name, "where_is_phantom"))
    return _with_pairs(ds, questions, new_view, new_q)


def _phantom_question(questions: list[dict], made: dict, base: int, colour: int, name: str, template: str) -> int:
    """Index in `questions` of "Where is the <colour> <name>?" with the choices of question `base`, appended (and
    remembered in `made`) the first time it is asked."""
    key = (base, colour, name)
    if key not in made:
        q = dict(questions[base])
        q["question"] = f"Where is the {COLOUR_WORDS[colour]} {name}?"
        q["template"], q["id"] = template, f"{q['id']}-phantom-{COLOUR_WORDS[colour]}-{name}"
        made[key] = len(questions)
        questions.append(q)
    return made[key]


def _with_pairs(ds: dict, questions: list[dict], new_view: list[int], new_q: list[int]) -> dict:
    """A copy of `ds` with `questions` and not-relevant pairs (view, question) added, kept view-major."""
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


def house_kinds(house_seed: int) -> set[str]:
    """The display names of every object kind in a house, generated as the training data generates it."""
    from sim.config import SimConfig
    from sim.house import generate_house
    from sim.question_templates import display_name
    from sim.questions import QuestionConfig

    sim = SimConfig()
    scene = generate_house(house_seed, QuestionConfig().n_rooms, sim.house, sim.robot)
    return {display_name(o.category) for o in scene.objects}


def add_phantom_kinds(ds: dict, per_view: int, seed: int, min_blocks: int = MIN_COLOUR_BLOCKS,
                      kinds_of=house_kinds) -> dict:
    """A copy of dataset `ds` with up to `per_view` phantom-kind pairs per view: "Where is the <c> <k>?" with c
    the colour most object blocks of the view show (at least min_blocks of them) and k a location question's
    kind (any in the data) that the view's house does not hold (kinds_of(house seed)); choices from a location
    question of the same house (views of houses without one get none)."""
    if per_view <= 0:
        return ds
    rng = np.random.default_rng(seed)
    questions = list(ds["questions"])
    names = sorted({LOCATION_TEXT.match(q["question"]).group(2) for q in questions if named_colour(q) >= 0})
    house_of_view = np.full(len(ds["block_colours"]), -1, np.int64)
    house_of_view[ds["pair_view"]] = [questions[q]["house_seed"] for q in ds["pair_question"]]
    location_q = {}
    for qi, q in enumerate(questions):
        if named_colour(q) >= 0:
            location_q.setdefault(q["house_seed"], qi)
    absent_cache: dict[int, list[str]] = {}
    phantom_q: dict = {}
    new_view, new_q = [], []
    for v, blocks in enumerate(ds["block_colours"]):
        house = int(house_of_view[v])
        if house not in location_q:
            continue
        counts = np.bincount(blocks[blocks < len(COLOUR_WORDS)], minlength=len(COLOUR_WORDS))
        if counts.max() < min_blocks:
            continue
        c = int(np.argmax(counts))
        if house not in absent_cache:
            held = kinds_of(house)
            absent_cache[house] = [n for n in names if n not in held]
        for name in rng.permutation(absent_cache[house])[:per_view]:
            new_view.append(v)
            new_q.append(_phantom_question(questions, phantom_q, location_q[house], c, str(name),
                                           "where_is_phantom_kind"))
    return _with_pairs(ds, questions, new_view, new_q)


def phantom_metrics(relevance: np.ndarray, ds: dict) -> dict:
    """How well per-pair `relevance` of a dataset made by add_phantom_colours / add_phantom_kinds tells a location
    question's relevant views from phantom pairs: AUROC of relevant location pairs against phantom-colour pairs
    ("phantom_") and phantom-kind pairs ("kind_phantom_"; nan without any), and the mean relevances."""
    from vlm.builtin_model.training.evaluate import auroc

    template = np.array([q.get("template") for q in ds["questions"]])[ds["pair_question"]]
    real = ds["relevant"] & (template == "where_is")
    out = {"location_mean_relevance": float(relevance[real].mean()) if real.any() else float("nan")}
    for prefix, name in (("phantom", "where_is_phantom"), ("kind_phantom", "where_is_phantom_kind")):
        phantom = template == name
        keep = real | phantom
        out[f"{prefix}_auroc"] = auroc(relevance[keep], real[keep])
        out[f"{prefix}_pairs"] = int(phantom.sum())
        out[f"{prefix}_mean_relevance"] = float(relevance[phantom].mean()) if phantom.any() else float("nan")
    return out
