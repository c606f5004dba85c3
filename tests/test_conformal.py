"""Conformal calibration: quantile edge cases, prediction sets, the running intersection, calibration
files; the stop policies, budgets and replay of recorded steps."""
import json
import math

import numpy as np
import pytest

from eqa.method import StopConfig
from eqa.metrics import calibration_scores, conformal_coverage
from eqa.records import GroundTruth, Reason, StepRecord, ViewRecord
from eqa.stopping import FixedBudgetStop, StopState, decision_budget, make_stop, replay
from vlm.conformal import (Calibration, CalibrationError, RunningIntersection, calibrate, conformal_threshold,
                           nonconformity, prediction_set, step_scores)


def test_step_scores_and_nonconformity():
    s = step_scores(0.5, [0.7, 0.2, 0.1])
    assert s == pytest.approx([-0.15, -0.4, -0.45])
    # k = 1 - min_t s_t(truth): the worst step for the true answer counts.
    steps = [(0.1, [0.5, 0.5]), (0.9, [0.8, 0.2]), (0.5, [0.4, 0.6])]
    assert nonconformity(steps, truth=1) == pytest.approx(1 + 0.9 * 0.8)
    assert nonconformity(steps, truth=0) == pytest.approx(1 + 0.5 * 0.6)
    with pytest.raises(ValueError):
        step_scores(1.5, [0.5, 0.5])
    with pytest.raises(ValueError):
        nonconformity([], truth=0)


def test_threshold_rank_and_tiny_n():
    scores = [1.0 + i / 100 for i in range(19)]  # N = 19
    # eps 0.1: rank ceil(20 * 0.9) = 18 -> the 18th smallest.
    assert conformal_threshold(scores, 0.1) == pytest.approx(1.17)
    # eps 0.05: rank ceil(20 * 0.95) = 19 = N -> the largest.
    assert conformal_threshold(scores, 0.05) == pytest.approx(1.18)
    # Tiny N: rank ceil(5 * 0.9) = 5 > 4 -> infinite threshold.
    assert math.isinf(conformal_threshold([1.1, 1.2, 1.3, 1.4], 0.1))
    assert math.isinf(conformal_threshold([], 0.2))
    # Order of the input does not matter.
    rng = np.random.default_rng(0)
    assert conformal_threshold(rng.permutation(scores), 0.1) == pytest.approx(1.17)
    with pytest.raises(ValueError):
        conformal_threshold(scores, 0.0)


def test_threshold_ties_keep_multiplicity():
    # Nine equal scores and one high one: rank ceil(11 * 0.8) = 9 falls inside the tie.
    scores = [1.3] * 9 + [1.9]
    assert conformal_threshold(scores, 0.2) == pytest.approx(1.3)
    # A truth whose score equals the threshold stays in the set (<=).
    assert prediction_set(0.6, [0.5, 0.5], 1.3) == {0, 1}  # 1 + 0.6 * 0.5 = 1.3 <= 1.3
    assert prediction_set(0.6, [0.49, 0.51], 1.3) == {1}


def test_prediction_set_and_intersection():
    q = 1.3
    # 1 - s = 1 + R (1 - p): with R = 0.5, a choice is kept when 1 - p <= 0.6, i.e. p >= 0.4.
    assert prediction_set(0.5, [0.5, 0.35, 0.15], q) == {0}
    assert prediction_set(0.0, [0.9, 0.05, 0.05], q) == {0, 1, 2}  # irrelevant view: keeps everything
    run = RunningIntersection(3, q)
    run.update(0.2, [0.2, 0.3, 0.5])  # 1 + 0.2 * 0.8 = 1.16 <= 1.3: all kept
    assert run.members == {0, 1, 2}
    run.update(0.6, [0.4, 0.55, 0.05])  # keeps p >= 1 - 0.3 / 0.6 = 0.5: {1}
    assert run.members == {1}
    run.update(0.9, [0.9, 0.05, 0.05])  # contradicts: empty intersection
    assert run.members == frozenset()
    inf = RunningIntersection(2, math.inf)
    inf.update(1.0, [1.0, 0.0])
    assert inf.members == {0, 1}  # an infinite threshold never excludes anything
    with pytest.raises(ValueError):
        run.update(0.5, [0.5, 0.5])


def _record(step, relevance=None, p=None, answerable=None, reason=None):
    """A step record whose newest view has this relevance and these answer probabilities."""
    views = [ViewRecord(float(step), (0.0, 0.0), 0.0, p_answer=list(p), relevance=relevance)] if p is not None else []
    return StepRecord(step, float(step), (0.0, 0.0, 0.0), 10, views=views, reason=reason,
                      truth=GroundTruth(answerable=answerable))


def _rows(rels, ps, **each):
    return [_record(i, r, p, **{k: v[i] for k, v in each.items()}) for i, (r, p) in enumerate(zip(rels, ps))]


def _cal(threshold, n=100):
    return Calibration(eps=0.1, n=n, threshold=threshold, vlm_id="m", prompt_version="v", config_hash="h")


def test_conformal_policy_stops_at_one_answer_and_answers_it():
    rows = _rows([0.1, 0.7, 0.2, 0.9], [[0.3, 0.4, 0.3], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.1, 0.8, 0.1]])
    policy = make_stop(StopConfig("conformal"), 3, calibration=_cal(1.4))
    stop, answer = replay(policy, rows, budget=10)
    # Row 1: 1 + 0.7 (1 - p) <= 1.4 keeps p >= 0.43 -> {B}: stop there with B.
    assert (stop, answer) == (1, 1) and policy.final_set == [1] and policy.stopped_confident
    # Infinite threshold (too little calibration data): runs to the budget, answers at the most relevant step.
    policy = make_stop(StopConfig("conformal"), 3, calibration=_cal(math.inf, n=3))
    stop, answer = replay(policy, rows, budget=3)
    assert (stop, answer) == (3, 1) and policy.final_set == [0, 1, 2] and not policy.stopped_confident
    with pytest.raises(ValueError):
        make_stop(StopConfig("conformal"), 3)


def test_disallowed_early_stop_still_records_sets():
    policy = make_stop(StopConfig("conformal"), 2, allow_early=False, calibration=_cal(1.2))
    sets = policy.observe(_record(0, 1.0, [0.9, 0.1]))
    assert sets.set == [0] and sets.step_set == [0] and sets.threshold == 1.2
    assert not policy.should_stop(StopState(decisions=0, budget=5))
    assert policy.should_stop(StopState(decisions=5, budget=5))


def test_least_rejected_answer_is_the_choice_the_views_reject_least():
    # Most relevant view (0.8) says A; two views say B firmly: max_t R_t (1 - p_t(y)) is A 0.63, B 0.48.
    rels, ps = [0.7, 0.8, 0.7], [[0.1, 0.9], [0.6, 0.4], [0.15, 0.85]]
    most_relevant = make_stop(StopConfig("fixed-budget"), 2)
    least_rejected = make_stop(StopConfig("fixed-budget", answer_rule="least-rejected"), 2)
    assert replay(most_relevant, _rows(rels, ps), 3) == (2, 0)
    assert most_relevant.answer() == (0, "most-relevant-step")
    assert replay(least_rejected, _rows(rels, ps), 3) == (2, 1)
    assert least_rejected.answer() == (1, "least-rejected")
    assert least_rejected.rejection == pytest.approx([0.63, 0.48])
    # A confident conformal stop keeps its own answer; without confidence the answer is in the set.
    conformal = make_stop(StopConfig("conformal", answer_rule="least-rejected"), 3, calibration=_cal(1.5))
    stop, answer = replay(conformal, _rows([0.5, 0.9], [[0.3, 0.3, 0.4], [0.45, 0.1, 0.45]]), 2)
    assert conformal.final_set == [0, 2] and answer in conformal.final_set
    with pytest.raises(ValueError, match="answer_rule"):
        StopConfig(answer_rule="loudest")


def test_other_policies():
    rows = _rows([0.3, 0.95, 0.5], [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    assert replay(make_stop(StopConfig("max-prob", max_prob_threshold=0.85), 2), rows, 5) == (0, 0)
    assert replay(make_stop(StopConfig("relevance", relevance_threshold=0.9, prob_threshold=0.55), 2), rows, 5) == (1, 1)
    assert replay(make_stop(StopConfig("fixed-budget"), 2), rows, 2) == (2, 1)  # most relevant: row 1 -> B
    rels, ps = [0.3, 0.95, 0.5], [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]]
    oracle_rows = _rows(rels, ps, answerable=[False, False, True])
    assert replay(make_stop(StopConfig("oracle"), 2), oracle_rows, 5) == (2, 1)
    # A recorded "no frontier" turn means exploration was done: stop there unless told otherwise.
    done = _rows(rels, ps, reason=[None, Reason.NO_FRONTIER, None])
    assert replay(make_stop(StopConfig("fixed-budget"), 2), done, 5)[0] == 1
    assert replay(make_stop(StopConfig("fixed-budget", stop_when_explored=False), 2), done, 5)[0] == 2
    with pytest.raises(ValueError):
        StopConfig("sometimes")


def test_calibration_file_roundtrip_and_mismatch(tmp_path):
    cal = calibrate([1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 1.05], 0.2, "builtin-x", "eqa-prompts-v1", "abc",
                    method="semantic")
    path = cal.save(tmp_path / "c.json")
    back = Calibration.load(path)
    assert back == cal and back.n == 11 and back.threshold == pytest.approx(1.9)  # rank ceil(12 * 0.8) = 10
    back.check("builtin-x", "eqa-prompts-v1", "abc")
    with pytest.raises(CalibrationError, match="VLM"):
        back.check("builtin-y", "eqa-prompts-v1", "abc")
    with pytest.raises(CalibrationError, match="prompt version"):
        back.check("builtin-x", "eqa-prompts-v2", "abc")
    with pytest.raises(CalibrationError, match="config hash"):
        back.check("builtin-x", "eqa-prompts-v1", "zzz")
    inf = calibrate([1.5], 0.1, "m", "v", "h").save(tmp_path / "inf.json")
    assert json.loads(inf.read_text())["threshold"] is None and math.isinf(Calibration.load(inf).threshold)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CalibrationError, match="cannot read"):
        Calibration.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"eps": 0.1}))
    with pytest.raises(CalibrationError, match="not a calibration file"):
        Calibration.load(tmp_path / "other.json")


def _synthetic_episode(rng, n_choices=3, steps=8):
    """An episode whose VLM is informative when relevant: relevance and the truth's probability rise
    together at a random step."""
    truth = int(rng.integers(n_choices))
    records = []
    seen = int(rng.integers(2, steps))
    for t in range(steps):
        rel = float(rng.uniform(0.6, 1.0) if t >= seen else rng.uniform(0.0, 0.3))
        logits = rng.normal(0, 1, n_choices)
        if t >= seen:
            logits[truth] += 2.5
        p = np.exp(logits) / np.exp(logits).sum()
        records.append(_record(t, rel, p.tolist()))
    return {"truth": truth, "budget": steps - 1, "choices": ["a", "b", "c"][:n_choices], "early_stop": False}, records


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.2])
def test_coverage_on_exchangeable_episodes(eps):
    rng = np.random.default_rng(1)
    calib = [_synthetic_episode(rng) for _ in range(400)]
    test = [_synthetic_episode(rng) for _ in range(2000)]
    cal = calibrate(calibration_scores(calib), eps, "m", "v", "h")
    cov = conformal_coverage(test, cal)["coverage"]["rate"]
    assert 1 - eps - 0.03 <= cov <= 1 - eps + 0.05


def test_calibration_refuses_early_stopped_episodes():
    rng = np.random.default_rng(2)
    summary, rows = _synthetic_episode(rng)
    summary["early_stop"] = True
    with pytest.raises(ValueError, match="early stopping"):
        calibration_scores([(summary, rows)])


def test_empty_intersection_stops_without_confidence_and_answers_by_relevance():
    rows = _rows([0.9, 0.95, 0.2], [[0.9, 0.1], [0.1, 0.9], [0.5, 0.5]])
    # q = 1.85: row 0 keeps both (A 1.09, B 1.81), row 1 only B (A 1.855, B 1.095): confident at row 1.
    policy = make_stop(StopConfig("conformal"), 2, calibration=_cal(1.85))
    assert replay(policy, rows, 10) == (1, 1) and policy.stopped_confident
    policy = make_stop(StopConfig("conformal"), 2, calibration=_cal(1.05))
    # row 0: A 1.09 > 1.05, B 1.81 -> empty set at once: stop (not confident), answer at the most relevant row.
    stop, answer = replay(policy, rows, 10)
    assert (stop, answer) == (0, 0) and policy.final_set == [] and not policy.stopped_confident
    keep_going = make_stop(StopConfig("conformal", stop_on_empty=False), 2, calibration=_cal(1.05))
    assert replay(keep_going, rows, 10) == (2, 1)  # runs out the rows; most relevant is row 1 -> B


def test_calibration_eps_must_match():
    cal = _cal(1.4)
    cal.check("m", "v", "h", eps=0.1)
    with pytest.raises(CalibrationError, match="eps 0.2"):
        cal.check("m", "v", "h", eps=0.2)


def test_budget_and_fixed_budget_policy():
    assert decision_budget(100.0, 50) == 30
    assert decision_budget(101.0, 50) == 31
    assert decision_budget(None, 17) == 17
    with pytest.raises(ValueError, match="floor area"):
        decision_budget(-1.0, 10)
    policy = make_stop(StopConfig(), 0)
    assert isinstance(policy, FixedBudgetStop)
    assert not policy.should_stop(StopState(decisions=29, budget=30))
    assert policy.should_stop(StopState(decisions=30, budget=30))
    assert policy.should_stop(StopState(decisions=3, budget=30, exploration_done=True))
    assert policy.stop_reason(StopState(3, 30, True)) == Reason.EXPLORED
    assert policy.stop_reason(StopState(30, 30)) == Reason.BUDGET
    assert not make_stop(StopConfig(stop_when_explored=False), 0).should_stop(StopState(3, 30, True))
    # early_stop off (calibration runs): only the budget stops, explored or not
    assert not make_stop(StopConfig(), 0, allow_early=False).should_stop(StopState(3, 30, True))
