"""Benchmark metrics from episode summaries and records: success with 95 % intervals,
normalised steps, path length, VLM cost, and success-versus-steps curves obtained by
replaying stopping rules offline on the recorded per-step VLM outputs."""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Callable, Optional

import numpy as np

from eqa.method import StopConfig
from eqa.records import StepRecord
from eqa.stopping import make_stop
from eqa.stopping import replay as replay_policy
from vlm.conformal import Calibration, calibrate, nonconformity


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


def cluster_bootstrap(clusters, n_boot: int, seed: int = 0) -> list[np.ndarray]:
    """Index arrays of `n_boot` bootstrap resamples that draw whole clusters with replacement.

    clusters: one key per episode (e.g. its house seed). Episodes of one house share its layout, so they
    are not independent; resampling houses instead of episodes gives honest intervals."""
    keys, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    members = [np.nonzero(inverse == k)[0] for k in range(len(keys))]
    picks = np.random.default_rng(seed).integers(0, len(keys), size=(n_boot, len(keys)))
    return [np.concatenate([members[k] for k in row]) for row in picks]


def bootstrap_interval(statistic: Callable[[np.ndarray], float], resamples: list[np.ndarray]) -> tuple[float, float]:
    """2.5 and 97.5 percentiles of `statistic(indices)` over the resamples (nan values dropped)."""
    values = np.array([statistic(idx) for idx in resamples], dtype=float)
    values = values[~np.isnan(values)]
    if not len(values):
        return math.nan, math.nan
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def _mean(xs) -> float:
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else math.nan


def summarize(summaries: list[dict]) -> dict:
    """Headline metrics of one method's episodes. Answerable-view figures count only the episodes whose driver
    knows when a view answers (the procedural questions'; not HM-EQA's or OpenEQA's)."""
    answered = [s for s in summaries if s.get("success") is not None]
    by_cat = defaultdict(list)
    for s in answered:
        by_cat[s["category"]].append(bool(s["success"]))
    labelled = [s for s in summaries if "first_answerable_step" in s]
    reached = [s["first_answerable_step"] is not None for s in labelled]
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
        "steps_to_first_answerable": _mean(s["first_answerable_step"] for s in labelled),
    }


# ---- offline stopping rules --------------------------------------------------------------------
# A rule maps one episode (summary, all its step records in order, as recorded with stopping disabled;
# records of skipped views carry no p_answer / relevance) to (stop record index, answer index).

Episodes = list[tuple[dict, list[StepRecord]]]
Rule = Callable[[dict, list[StepRecord]], tuple[int, int]]


def budget_fraction_rule(fraction: float) -> Rule:
    """Stop after `fraction` of the recorded decisions (record i is the view after i decisions); answer
    argmax p at the most relevant step so far (DESIGN.md)."""

    def rule(summary, records):
        stop = max(0, min(len(records) - 1, int(math.floor(fraction * (len(records) - 1) + 0.5))))
        policy = make_stop(StopConfig("fixed-budget"), len(summary["choices"]))
        for record in records[: stop + 1]:
            policy.observe(record)
        return stop, policy.answer()[0]

    return rule


def policy_rule(config: StopConfig, calibration: Optional[Calibration] = None) -> Rule:
    """Replay a live stop policy (eqa.stopping) on the records: the same stop step as a live run."""

    def rule(summary, records):
        policy = make_stop(config, len(summary["choices"]), calibration=calibration)
        return replay_policy(policy, records, summary["budget"])

    return rule


def vlm_rows(records: list[StepRecord]) -> list[StepRecord]:
    """The step records that carry the VLM's answer and relevance."""
    return [r for r in records if r.p_answer is not None and r.relevance is not None]


def normalised_steps(summary: dict, records: list[StepRecord], stop: int) -> float:
    """Decisions taken before stopping at record `stop`, as a fraction of the episode's budget."""
    return records[stop].step / summary["budget"]


def replay_outcomes(episodes: Episodes, rule: Rule) -> tuple[list[bool], list[float]]:
    """Apply a stopping rule to recorded episodes (those with VLM rows): per episode, whether the answer
    is right and the normalised steps (decisions taken before stopping / budget)."""
    wins, steps = [], []
    for summary, rows in episodes:
        if not vlm_rows(rows):
            continue
        stop, answer = rule(summary, rows)
        wins.append(answer == summary["truth"])
        steps.append(normalised_steps(summary, rows, stop))
    return wins, steps


def outcome_summary(wins: list[bool], steps: list[float]) -> dict:
    """Success rate (Wilson interval) and mean normalised steps."""
    out = rate(wins)
    out["normalized_steps"] = float(np.mean(steps)) if steps else math.nan
    return out


def replay(episodes: Episodes, rule: Rule) -> dict:
    """Apply a stopping rule to recorded episodes: success rate and mean normalised steps."""
    return outcome_summary(*replay_outcomes(episodes, rule))


def calibration_scores(episodes: Episodes) -> list[float]:
    """Non-conformity k_i of each episode's true answer over all its recorded VLM steps. The episodes
    must have run without early stopping (else the scores are biased towards stopping early)."""
    scores = []
    for summary, rows in episodes:
        if summary.get("truth") is None:
            raise ValueError(f"episode {summary.get('episode_id')} has no ground-truth answer; calibration needs "
                             "procedural questions with known answers")
        if summary.get("early_stop", False):
            raise ValueError(f"episode {summary.get('episode_id')} ran with early stopping; calibration needs "
                             "episodes run to their budget (`eqa bench --no-early-stop`)")
        rows = vlm_rows(rows)
        if rows:
            scores.append(nonconformity([(r.relevance, r.p_answer) for r in rows], summary["truth"]))
    return scores


def conformal_coverage(episodes: Episodes, calibration: Calibration,
                       config: Optional[StopConfig] = None) -> dict:
    """Conformal stopping replayed on episodes recorded without early stopping.

    coverage: fraction of episodes whose true answer is in the intersection of the sets over the whole
    episode (the quantity the guarantee is about: >= 1 - eps, and at most about 1 - eps + 1/(N+1));
    coverage_at_stop: the same for the intersection when the policy stops (one answer left, or the
    budget), which can only be larger. Also success, normalised steps, the mean final set size and
    covered: the per-episode whole-episode flags (episodes with VLM rows, in order)."""
    config = config or StopConfig(policy="conformal")
    if config.policy != "conformal":
        raise ValueError(f"conformal_coverage needs the conformal policy, got {config.policy!r}")
    full, at_stop, sizes, wins, steps = [], [], [], [], []
    for summary, rows in episodes:
        if not vlm_rows(rows):
            continue
        whole = make_stop(config, len(summary["choices"]), allow_early=False, calibration=calibration)
        replay_policy(whole, rows, summary["budget"])
        live = make_stop(config, len(summary["choices"]), calibration=calibration)
        stop, answer = replay_policy(live, rows, summary["budget"])
        full.append(summary["truth"] in whole.final_set)
        at_stop.append(summary["truth"] in live.final_set)
        sizes.append(len(live.final_set))
        wins.append(answer == summary["truth"])
        steps.append(normalised_steps(summary, rows, stop))
    out = {"coverage": rate(full), "coverage_at_stop": rate(at_stop), "covered": full,
           "mean_set_size_at_stop": float(np.mean(sizes)) if sizes else math.nan}
    out.update(outcome_summary(wins, steps))  # success and normalised steps of the live policy, as `replay`
    return out


def success_curves(episodes: Episodes,
                   calibration_scores_: Optional[list[float]] = None, vlm_id: str = "",
                   prompt_version: str = "") -> dict[str, list[dict]]:
    """Success versus normalised steps for each stop policy, sweeping its parameter; `conformal`
    (sweeping eps) when calibration scores are given; `oracle` where rows carry `answerable`."""
    curves = {
        "fixed-budget": [dict(replay(episodes, budget_fraction_rule(f)), param=f) for f in np.linspace(0.1, 1.0, 10)],
        "relevance": [dict(replay(episodes, policy_rule(StopConfig("relevance", relevance_threshold=t,
                                                                   prob_threshold=0.0))), param=t)
                      for t in np.linspace(0.1, 0.95, 10)],
        "max-prob": [dict(replay(episodes, policy_rule(StopConfig("max-prob", max_prob_threshold=t))), param=t)
                     for t in np.linspace(0.3, 0.95, 10)],
    }
    if calibration_scores_:
        curves["conformal"] = []
        for eps in CURVE_EPS:
            cal = calibrate(calibration_scores_, eps, vlm_id, prompt_version, "")
            curves["conformal"].append(dict(replay(episodes, policy_rule(StopConfig("conformal", eps=eps), cal)),
                                            param=eps))
    if any(r.truth.answerable is not None for _, rows in episodes for r in rows):
        curves["oracle"] = [dict(replay(episodes, policy_rule(StopConfig("oracle"))), param=None)]
    return curves


CURVE_EPS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
