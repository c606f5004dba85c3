"""Benchmark metrics from episode summaries and records: success with 95 % intervals,
normalised steps, path length, VLM cost, and success-versus-steps curves obtained by
replaying stopping rules offline on the recorded per-step VLM outputs."""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Callable

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion ((nan, nan) for n = 0)."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(values: list[bool]) -> dict:
    k, n = int(sum(values)), len(values)
    lo, hi = wilson_interval(k, n)
    return {"n": n, "successes": k, "rate": k / n if n else math.nan, "ci95": [lo, hi]}


def _mean(xs) -> float:
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else math.nan


def summarize(summaries: list[dict]) -> dict:
    """Headline metrics of one method's episodes."""
    answered = [s for s in summaries if s.get("success") is not None]
    by_cat = defaultdict(list)
    for s in answered:
        by_cat[s["category"]].append(bool(s["success"]))
    reached = [s["first_answerable_step"] is not None for s in summaries]
    return {
        "episodes": len(summaries),
        "answered": len(answered),
        "success": rate([bool(s["success"]) for s in answered]),
        "success_by_category": {c: rate(v) for c, v in sorted(by_cat.items())},
        "normalized_steps": _mean(s["normalized_steps"] for s in summaries),
        "path_length_m": _mean(s["path_length_m"] for s in summaries),
        "vlm_calls_per_episode": _mean(s.get("vlm_calls", 0) for s in summaries),
        "vlm_seconds_per_episode": _mean(s.get("vlm_seconds", 0.0) for s in summaries),
        "answerable_view_reached": rate(reached),
        "steps_to_first_answerable": _mean(s["first_answerable_step"] for s in summaries),
    }


# ---- offline stopping rules --------------------------------------------------------------------
# A rule maps one episode's per-step rows (dicts with "p_answer", "relevance") to
# (stop index, answer index). Rows are the decisions in order, as recorded with stopping disabled.

Rule = Callable[[list[dict]], tuple[int, int]]


def _answer_at_most_relevant(rows: list[dict], upto: int) -> int:
    """argmax p at the most relevant step among rows[: upto + 1] (the DESIGN.md answer rule)."""
    rel = [r["relevance"] for r in rows[: upto + 1]]
    k = int(np.argmax(rel))
    return int(np.argmax(rows[k]["p_answer"]))


def budget_fraction_rule(fraction: float) -> Rule:
    """Stop after `fraction` of the recorded decisions (row i is the view after i decisions)."""

    def rule(rows):
        stop = max(0, min(len(rows) - 1, int(math.floor(fraction * (len(rows) - 1) + 0.5))))
        return stop, _answer_at_most_relevant(rows, stop)

    return rule


def relevance_rule(rel_threshold: float, prob_threshold: float = 0.0) -> Rule:
    """Stop at the first step with relevance > T and max p > T' (else at the end)."""

    def rule(rows):
        for i, r in enumerate(rows):
            if r["relevance"] > rel_threshold and max(r["p_answer"]) > prob_threshold:
                return i, int(np.argmax(r["p_answer"]))
        return len(rows) - 1, _answer_at_most_relevant(rows, len(rows) - 1)

    return rule


def max_prob_rule(prob_threshold: float) -> Rule:
    """Stop at the first step whose max answer probability exceeds the threshold."""

    def rule(rows):
        for i, r in enumerate(rows):
            if max(r["p_answer"]) > prob_threshold:
                return i, int(np.argmax(r["p_answer"]))
        return len(rows) - 1, _answer_at_most_relevant(rows, len(rows) - 1)

    return rule


def vlm_rows(record_rows: list[dict]) -> list[dict]:
    """The decision rows that carry VLM outputs."""
    return [r for r in record_rows if r.get("p_answer") is not None and r.get("relevance") is not None]


def replay(episodes: list[tuple[dict, list[dict]]], rule: Rule) -> dict:
    """Apply a stopping rule to recorded episodes: success rate and mean normalised steps."""
    wins, steps = [], []
    for summary, rows in episodes:
        rows = vlm_rows(rows)
        if not rows:
            continue
        stop, answer = rule(rows)
        wins.append(answer == summary["truth"])
        steps.append(rows[stop].get("step", stop) / summary["budget"])  # decisions taken before stopping
    out = rate(wins)
    out["normalized_steps"] = float(np.mean(steps)) if steps else math.nan
    return out


def success_curves(episodes: list[tuple[dict, list[dict]]]) -> dict[str, list[dict]]:
    """Success versus normalised steps for each rule family, sweeping its parameter."""
    curves = {
        "fixed-budget": [dict(replay(episodes, budget_fraction_rule(f)), param=f) for f in np.linspace(0.1, 1.0, 10)],
        "relevance": [dict(replay(episodes, relevance_rule(t, 0.0)), param=t) for t in np.linspace(0.1, 0.95, 10)],
        "max-prob": [dict(replay(episodes, max_prob_rule(t)), param=t) for t in np.linspace(0.3, 0.95, 10)],
    }
    return curves

