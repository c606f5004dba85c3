"""Count labels for every kind in every view: count-head supervision beyond the house's count questions.

A house yields about one count question per room kind, so the count head sees few counts (the model card:
three count heads of different form all stopped at 64-67 % held out). Every view can teach counting, though:
per house, `count_queries` words the count questions the generator could ask in its uniquely named rooms ("How
many lamps are there in the bedroom?" for every kind there but chairs and pillows, "How many chairs are at the
dining table in the kitchen?", "How many pillows are on the bed in the bedroom?"), and `view_labels` labels each
view against them like a count question's pair: target cells (grounding) and target centres (the count head).

Training (`kind_count_rows`) adds per view up to that many of these rows: all but one drawn among the queries
whose things the view shows, one among those it does not (a zero count). They train the count head and the
grounding only; no answer, relevance, worth-exploring or direction loss.
"""
from __future__ import annotations

import numpy as np

from vlm.builtin_model.training.data import cell_count, cells_showing, centre_counts

KIND_CHOICES = ("None", "One", "Two", "Three", "Four", "Five")  # number choices, so the count head runs on a row
TEMPLATE = "kind_count"


def count_queries(scene) -> list[tuple[str, list[int]]]:
    """(question text, target instance ids) of every count the generator's templates could ask in the scene's
    uniquely named rooms, worded as `sim.question_templates.count` words them, without its choice of which."""
    from sim.question_templates import HouseFacts, display_name, plural, table_counts

    facts = HouseFacts(scene)
    out = []
    for room in facts.named_rooms:
        objs = facts.by_room[room.room_id]
        out += [(text, [o.instance_id for o in things]) for _template, text, things in table_counts(facts, room)]
        for name in sorted({display_name(o.category) for o in objs} - {"chair", "pillow"}):
            ids = [o.instance_id for o in facts.in_room(room, name)]
            out.append((f"How many {plural(name)} are there in the {room.kind}?", ids))
    return out


def view_labels(ids: np.ndarray, queries: list[tuple[str, list[int]]], centre_min: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The queries whose targets show any pixel in a view: (n,) their indices, (n, cells) bool target cells and
    (n, cells) uint8 target centres (instances with at least centre_min pixels). ids: (H, W) instance ids."""
    present = set(np.unique(ids).tolist())
    shown = [k for k, (_text, tids) in enumerate(queries) if present.intersection(tids)]
    cells = [cells_showing(ids, queries[k][1]) for k in shown]
    centres = [centre_counts(ids, queries[k][1], centre_min) for k in shown]
    n_cells = cell_count(ids.shape[1], ids.shape[0])
    return (np.asarray(shown, np.int64), np.asarray(cells, bool).reshape(len(shown), n_cells),
            np.asarray(centres, np.uint8).reshape(len(shown), n_cells))


def kind_question(text: str, house_seed: int, k: int) -> dict:
    """A question record (data.house_samples layout) for a count query: number choices, no answer."""
    return {"question": text, "choices": list(KIND_CHOICES), "answer_index": 0, "category": "count",
            "template": TEMPLATE, "house_seed": house_seed, "id": f"kind-{house_seed}-{k}"}


def draw_rows(view: int, starts: np.ndarray, ends: np.ndarray, pair_query: np.ndarray, first: np.ndarray,
              n_queries: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Up to k rows of a view: (stored pair indices, -1 for a zero row) and their query indices. Up to k - 1
    stored pairs (the view shows their things) drawn at random, and one query of the house that it does not show.
    starts/ends: per view its stored pairs' range; first/n_queries: per view its house's queries."""
    stored = np.arange(starts[view], ends[view])
    pick = rng.permutation(stored)[:max(k - 1, 0)]
    absent = np.setdiff1d(np.arange(first[view], first[view] + n_queries[view]), pair_query[stored])
    pairs, queries = list(pick), list(pair_query[pick])
    if len(absent):
        pairs.append(-1)
        queries.append(int(absent[rng.integers(len(absent))]))
    return np.asarray(pairs, np.int64), np.asarray(queries, np.int64)
