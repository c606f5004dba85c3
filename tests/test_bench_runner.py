"""The benchmark harness: parallel resumable runner (also after kill -9), Ray, metrics and report."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from eqa.method import StopConfig
from eqa.metrics import (bootstrap_interval, budget_fraction_rule, cluster_bootstrap, policy_rule, replay, summarize,
                         wilson_interval)
from eqa.records import StepRecord, ViewRecord
from eqa.report import load_runs, write_report
from eqa.runner import Job, finished_ids, load_summaries, run_jobs
from sim.questions import QuestionConfig, generate_questions, save_jsonl

SMALL = ["sim.camera.width=160", "sim.camera.height=120", "agent.default_budget=6", "agent.budget_factor=0.6"]
WORKER = "eqa.sim_driver:question_job"


@pytest.fixture(scope="module")
def questions(tmp_path_factory):
    qs = generate_questions("test", 4, 7, QuestionConfig(n_rooms=4, questions_per_house=2))
    path = tmp_path_factory.mktemp("ds") / "q.jsonl"
    save_jsonl(qs, path)
    return qs, path


def _method():
    from eqa.sim_driver import load_sim_run

    return load_sim_run("fbe", SMALL).to_dict()


def _stable(summaries):
    return [{k: v for k, v in s.items() if k not in ("wall_time_s",)} for s in summaries]


@pytest.fixture(scope="module")
def reference(questions, tmp_path_factory):
    qs, _ = questions
    out = tmp_path_factory.mktemp("ref")
    return run_jobs([Job(q.id, q.to_json()) for q in qs], WORKER, _method(), out, workers=2, progress=False)


@pytest.mark.integration
def test_parallel_run_writes_one_complete_folder_per_episode(questions, reference, tmp_path):
    qs, _ = questions
    assert [s["question_id"] for s in reference] == sorted(q.id for q in qs)
    for s in reference:
        assert s["decisions"] <= s["budget"] and s["success"] is None  # no VLM: nothing answered
    # Serial and parallel runs agree.
    serial = run_jobs([Job(q.id, q.to_json()) for q in qs[:2]], WORKER, _method(), tmp_path, workers=1, progress=False)
    assert _stable(serial) == _stable([s for s in reference if s["question_id"] in {q.id for q in qs[:2]}])


@pytest.mark.integration
def test_resume_after_kill_9_gives_the_same_results(questions, reference, tmp_path):
    _, path = questions
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "eqa.cli", "bench", "--dataset", str(path), "--out", str(out), "--workers", "1",
           *SMALL]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(finished_ids(out)) < 1:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = finished_ids(out)
    assert 1 <= len(done_before) < 4, "the kill should land mid-run"
    stamps = {i: (out / "episodes" / i / "summary.json").stat().st_mtime_ns for i in done_before}
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert not list((out / "episodes").glob(".tmp-*"))
    for i, stamp in stamps.items():  # finished episodes were not re-run
        assert (out / "episodes" / i / "summary.json").stat().st_mtime_ns == stamp
    assert _stable(load_summaries(out)) == _stable(reference)
    runner = json.loads((out / "runner.json").read_text())
    assert runner["ran"] == 4 - len(done_before)


@pytest.mark.integration
def test_ray_local_cluster_gives_the_same_results(questions, reference, tmp_path):
    pytest.importorskip("ray")
    qs, _ = questions
    got = run_jobs([Job(q.id, q.to_json()) for q in qs], WORKER, _method(), tmp_path, workers=2, ray_address="local",
                   progress=False)
    assert _stable(got) == _stable(reference)


@pytest.mark.integration
def test_method_mismatch_is_refused(questions, tmp_path):
    _, path = questions
    from eqa.cli import main
    assert main(["bench", "--dataset", str(path), "--out", str(tmp_path), "--limit", "1", *SMALL]) == 0
    assert main(["bench", "--dataset", str(path), "--out", str(tmp_path), "--limit", "1", *SMALL,
                 "agent.planner.backoff=0.3"]) == 2
    # a folder written before a setting existed (here open_answer and the question checks) resumes: the new
    # settings take their defaults; the finished episode is not run again
    saved = tmp_path / "method.json"
    old = json.loads(saved.read_text())
    del old["open_answer"]
    for key in ("answer_checks", "colour_majority", "colour_distractor_max", "state_min_pixels",
                "count_other_max_pixels"):
        del old["questions"][key]
    saved.write_text(json.dumps(old))
    before = (tmp_path / "episodes").stat().st_mtime_ns
    assert main(["bench", "--dataset", str(path), "--out", str(tmp_path), "--limit", "1", *SMALL]) == 0
    assert (tmp_path / "episodes").stat().st_mtime_ns == before


def test_wilson_interval():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_cluster_bootstrap_draws_whole_houses():
    houses = ["a", "a", "b", "c", "c", "c"]
    resamples = cluster_bootstrap(houses, 300, seed=1)
    assert len(resamples) == 300
    assert all(np.array_equal(x, y) for x, y in zip(resamples, cluster_bootstrap(houses, 300, seed=1)))
    for idx in resamples:
        drawn = [houses[i] for i in idx]
        # three houses drawn per resample, each with all of its episodes
        assert sum(drawn.count(h) // houses.count(h) for h in set(drawn)) == 3
        assert all(drawn.count(h) % houses.count(h) == 0 for h in set(drawn))
    flags = np.array([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    lo, hi = bootstrap_interval(lambda idx: flags[idx].mean(), resamples)
    assert lo < flags.mean() < hi and hi == 1.0  # resamples without house b are all covered
    assert bootstrap_interval(lambda idx: np.nan, resamples) != bootstrap_interval(lambda idx: 0.5, resamples)


@pytest.mark.integration
def test_pooled_folders_must_not_overlap(questions, tmp_path):
    qs, _ = questions
    a, b = tmp_path / "a", tmp_path / "b"
    run_jobs([Job(q.id, q.to_json()) for q in qs[:1]], WORKER, _method(), a, workers=1, progress=False)
    run_jobs([Job(q.id, q.to_json()) for q in qs[1:2]], WORKER, _method(), b, workers=1, progress=False)
    name, summaries, episodes = load_runs([a, b])
    assert [s["question_id"] for s in summaries] == [q.id for q in qs[:2]] and len(episodes) == 2
    assert name == f"{summaries[0]['method']} (a + b)"
    with pytest.raises(ValueError, match="share episodes"):
        load_runs([a, a])


def _episode(truth, rels, ps, budget):
    rows = [StepRecord(i, float(i), (0.0, 0.0, 0.0), budget, views=[ViewRecord(float(i), (0.0, 0.0), 0.0,
                                                                                 p_answer=p, relevance=r)])
            for i, (r, p) in enumerate(zip(rels, ps))]
    return {"truth": truth, "budget": budget, "choices": ["A", "B"]}, rows


def test_offline_stopping_rules():
    # Rows are the views after 0, 1, 2, 3 decisions of a 3-decision budget.
    ep = _episode(1, [0.1, 0.9, 0.2, 0.95], [[0.6, 0.4], [0.2, 0.8], [0.5, 0.5], [0.9, 0.1]], budget=3)
    early = replay([ep], budget_fraction_rule(0.5))  # stops at row 2; most relevant so far is row 1 -> B
    assert early["rate"] == 1.0 and early["normalized_steps"] == pytest.approx(2 / 3)
    late = replay([ep], budget_fraction_rule(1.0))  # most relevant is row 3 -> A (wrong)
    assert late["rate"] == 0.0 and late["normalized_steps"] == 1.0
    rel = replay([ep], policy_rule(StopConfig("relevance", relevance_threshold=0.5, prob_threshold=0.7)))  # first row with R > 0.5 and max p > 0.7 is row 1
    assert rel["rate"] == 1.0 and rel["normalized_steps"] == pytest.approx(1 / 3)
    assert replay([ep], budget_fraction_rule(0.0))["normalized_steps"] == 0.0


@pytest.mark.integration
def test_summarize_and_report(reference, tmp_path):
    m = summarize(reference)
    assert m["episodes"] == 4 and m["answered"] == 0
    assert 0 < m["normalized_steps"] <= 1
    out = tmp_path / "report"
    qs = generate_questions("test", 2, 7, QuestionConfig(n_rooms=4, questions_per_house=2))
    run_jobs([Job(q.id, q.to_json()) for q in qs], WORKER, _method(), tmp_path / "run", progress=False)
    path = write_report([tmp_path / "run"], out)
    text = path.read_text()
    assert "| fbe (run) | 2 |" in text and (out / "answerable_vs_steps.png").is_file()


@pytest.mark.integration
def test_vlm_method_records_every_step_and_reports_curves(tmp_path):
    """A real VLM backend (tiny random Qwen2-VL through transformers) in benchmark episodes with
    stopping disabled: every decision row carries the answer probabilities and relevance, the
    summary answers by the DESIGN.md rule, and the report draws success-versus-steps curves."""
    pytest.importorskip("transformers")
    from vlm_fixtures import build_tiny_hf_model

    model = build_tiny_hf_model(tmp_path / "tiny", "qwen2_vl", seed=0)
    qs = generate_questions("test", 2, 7, QuestionConfig(n_rooms=4, questions_per_house=2))
    from eqa.sim_driver import load_sim_run

    method = load_sim_run("fbe", SMALL + ["name=tiny-vlm", "early_stop=false", "vlm.backend=hf",
                                              f"vlm.hf.model_path={model}"]).to_dict()
    out = tmp_path / "run"
    summaries = run_jobs([Job(q.id, q.to_json()) for q in qs], WORKER, method, out, progress=False)
    for s in summaries:
        assert s["decisions"] == s["budget"]  # no early stop: the whole budget is recorded
        assert s["vlm_calls"] == s["budget"] + 1 and s["answer"] is not None
        assert s["success"] == (s["answer"] == s["truth"])
        assert s["vlm"]["backend"] == "hf"
        from eqa.records import read_records
        rows = read_records(out / "episodes" / s["episode_id"] / "record.jsonl")
        assert all(abs(sum(r.p_answer) - 1.0) < 1e-5 and 0.0 <= r.relevance <= 1.0 for r in rows)
        best = max(range(len(rows)), key=lambda i: rows[i].relevance)
        assert s["answer"] == max(range(len(rows[best].p_answer)), key=lambda k: rows[best].p_answer[k])
        assert s["answer_probabilities"] == rows[best].p_answer
    text = write_report([out], tmp_path / "report").read_text()
    assert "| tiny-vlm (run) | 2 |" in text and "n=2" in text
    assert (tmp_path / "report" / "success_vs_steps.png").is_file()
