"""Conformal stopping end to end with the built-in VLM in built-in houses: live stop equals offline
replay, `eqa calibrate` from benchmark records, `eqa demo` and `eqa run`."""
import json
import math
import shutil

import pytest

from eqa.cli import main
from eqa.method import StopConfig
from eqa.metrics import vlm_rows
from eqa.records import Reason, read_records
from eqa.sim_driver import CustomQuestion, load_sim_run, run_question
from eqa.stopping import make_stop, replay
from sim.questions import QuestionConfig, generate_questions, save_jsonl
from vlm import make_vlm
from vlm.conformal import Calibration, CalibrationError, step_scores

pytestmark = pytest.mark.integration

SMALL = ["sim.camera.width=160", "sim.camera.height=120", "agent.budget_factor=0.6"]


@pytest.fixture(scope="module")
def question():
    return generate_questions("test", 1, 5, QuestionConfig(n_rooms=4, questions_per_house=1))[0]


@pytest.fixture(scope="module")
def full_run(question, tmp_path_factory):
    """The question run to its budget (no early stop) with the built-in VLM."""
    run = load_sim_run("semantic", SMALL + ["early_stop=false"])
    vlm = make_vlm(run.method.vlm)
    out = tmp_path_factory.mktemp("full")
    summary = run_question(question, run, out, vlm=vlm)
    return run, vlm, summary, read_records(out / "record.jsonl")


def _threshold_for_singleton(rows, budget):
    """The smallest threshold (among the recorded 1 - s_t(y) values) whose replay stops confidently, with
    one answer left, before the budget; so the live run below must stop early on a one-answer set."""
    values = sorted({1.0 - float(s) for r in rows for s in step_scores(r.relevance, r.p_answer)})
    for q in values:
        policy = make_stop(StopConfig("conformal"), len(rows[0].p_answer),
                           calibration=Calibration(0.1, 200, q + 1e-9, "m", "v", "h"))
        stop, _ = replay(policy, rows, budget)
        if policy.stopped_confident and rows[stop].step < budget:
            return q + 1e-9
    raise AssertionError("no threshold gives a confident early stop on this episode")


def test_live_conformal_stop_equals_offline_replay(question, full_run, tmp_path):
    run, vlm, full_summary, full_rows = full_run
    rows = vlm_rows(full_rows)
    assert len(rows) == full_summary["budget"] + 1  # one VLM view per decision and the final view
    cal = Calibration(eps=0.1, n=200, threshold=_threshold_for_singleton(rows, full_summary["budget"]), vlm_id=vlm.info.model_id,
                      prompt_version=vlm.info.prompt_version, config_hash=run.exploration_hash())
    path = cal.save(tmp_path / "cal.json")
    live_run = load_sim_run("semantic", SMALL + ["stop.policy=conformal", f"stop.calibration={path}"])
    summary = run_question(question, live_run, tmp_path / "live", vlm=vlm)
    live_rows = read_records(tmp_path / "live" / "record.jsonl")
    # Replaying the live record and the full record gives the live stop step and answer.
    for recorded in (live_rows, full_rows):
        stop, answer = replay(make_stop(live_run.method.stop, len(question.choices), calibration=cal), recorded,
                              summary["budget"])
        assert recorded[stop].step == summary["decisions"]
        assert answer == summary["answer"]
    assert summary["decisions"] < full_summary["budget"] and summary["stopped_confident"]
    assert len(summary["final_set"]) == 1 and summary["answer"] == summary["final_set"][0]
    assert live_rows[-1].reason == Reason.CONFIDENT and summary["stop_reason"] == "confident"
    assert summary["stop_policy"] == "conformal" and summary["answer_rule"] == "conformal"
    assert live_rows[-1].conformal.set == summary["final_set"]
    # up to its stop, the live run decides exactly as the run without stopping (timings and sets aside)

    def strip(record):
        return {k: v for k, v in record.to_json().items() if k not in ("timings", "conformal")}

    assert [strip(r) for r in live_rows[:-1]] == [strip(r) for r in full_rows[:len(live_rows) - 1]]
    assert (tmp_path / "live" / "episode.png").is_file()


def test_calibration_must_match_vlm_and_config(question, full_run, tmp_path):
    run, vlm, _, _ = full_run
    cal = Calibration(eps=0.1, n=200, threshold=1.5, vlm_id="another-model", prompt_version=vlm.info.prompt_version,
                      config_hash=run.exploration_hash())
    path = cal.save(tmp_path / "other.json")
    other = load_sim_run("semantic", SMALL + ["stop.policy=conformal", f"stop.calibration={path}"])
    with pytest.raises(CalibrationError, match="VLM"):
        run_question(question, other, tmp_path / "x", vlm=vlm)
    ok = Calibration(eps=0.1, n=200, threshold=1.5, vlm_id=vlm.info.model_id, prompt_version=vlm.info.prompt_version,
                     config_hash=run.exploration_hash()).save(tmp_path / "ok.json")
    changed = load_sim_run("semantic", SMALL + ["stop.policy=conformal", f"stop.calibration={ok}", "semantic.k=2"])
    with pytest.raises(CalibrationError, match="config hash"):
        run_question(question, changed, tmp_path / "y", vlm=vlm)
    narrow = load_sim_run("semantic", SMALL + ["stop.policy=conformal", f"stop.calibration={ok}",
                                               "sim.camera.hfov_deg=90"])  # the simulator is part of the hash
    with pytest.raises(CalibrationError, match="config hash"):
        run_question(question, narrow, tmp_path / "w", vlm=vlm)
    missing = load_sim_run("semantic", SMALL + ["stop.policy=conformal", "stop.eps=0.37"])
    with pytest.raises(FileNotFoundError, match="eqa calibrate"):
        run_question(question, missing, tmp_path / "z", vlm=vlm)


def test_calibrate_command_from_bench_records(tmp_path, capsys):
    qs = generate_questions("calib", 2, 11, QuestionConfig(n_rooms=4, questions_per_house=1))
    save_jsonl(qs, tmp_path / "calib.jsonl")
    bench = ["bench", "--dataset", str(tmp_path / "calib.jsonl"), "--method", "semantic", "--out",
             str(tmp_path / "run"), "--no-early-stop"] + SMALL
    assert main(bench) == 0
    assert main(["calibrate", "--records", str(tmp_path / "run"), "--eps", "0.2", "--out", str(tmp_path / "c.json")]) == 0
    cal = Calibration.load(tmp_path / "c.json")
    assert cal.n == 2 and cal.eps == 0.2 and math.isinf(cal.threshold)  # N = 2 is too few for eps 0.2
    assert cal.method == "semantic" and cal.prompt_version == "eqa-prompts-v1"
    assert cal.config_hash == load_sim_run("semantic", SMALL).exploration_hash()
    assert "threshold q = inf" in capsys.readouterr().out
    # Several folders are pooled (N adds up); folders of different method configs are refused.
    qs2 = generate_questions("calib", 2, 12, QuestionConfig(n_rooms=4, questions_per_house=1))
    save_jsonl(qs2, tmp_path / "calib2.jsonl")
    assert main(bench[:2] + [str(tmp_path / "calib2.jsonl")] + bench[3:6] + [str(tmp_path / "run2")] + bench[7:]) == 0
    pooled = ["calibrate", "--records", str(tmp_path / "run"), str(tmp_path / "run2"), "--eps", "0.2", "--out"]
    assert main(pooled + [str(tmp_path / "c2.json")]) == 0
    cal2 = Calibration.load(tmp_path / "c2.json")
    assert cal2.n == 4 and cal2.config_hash == cal.config_hash and str(tmp_path / "run2") in cal2.source
    (tmp_path / "run2" / "method.json").write_text(
        (tmp_path / "run2" / "method.json").read_text().replace('"tau_local": 1.0', '"tau_local": 2.0'))
    capsys.readouterr()
    assert main(pooled + [str(tmp_path / "c3.json")]) != 0
    assert "different method configs" in capsys.readouterr().err and not (tmp_path / "c3.json").exists()
    # The report replays every stop policy, conformal included, on the recorded steps.
    from eqa.metrics import success_curves
    from eqa.report import load_run
    assert main(["report", str(tmp_path / "run"), "--calib", str(tmp_path / "run"), "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "success_vs_steps.png").is_file()
    _, summaries, episodes = load_run(tmp_path / "run")
    curves = success_curves(episodes, [1.2, 1.4], "m", "v")
    assert set(curves) == {"fixed-budget", "relevance", "max-prob", "conformal", "oracle"}
    # Early-stopped episodes are refused.
    early = ["bench", "--dataset", str(tmp_path / "calib.jsonl"), "--method", "semantic", "--out",
             str(tmp_path / "early"), "--limit", "1"] + SMALL
    assert main(early) == 0
    capsys.readouterr()
    assert main(["calibrate", "--records", str(tmp_path / "early"), "--eps", "0.2", "--out", str(tmp_path / "d.json")]) != 0
    assert "ran with early stopping" in capsys.readouterr().err and not (tmp_path / "d.json").exists()
    # A folder whose episodes come from two VLMs (a run resumed after the weights changed) is refused.
    from eqa.runner import SUMMARY, episodes_dir
    path = episodes_dir(tmp_path / "run") / summaries[0]["episode_id"] / SUMMARY
    changed = json.loads(path.read_text())
    changed["vlm"]["model_id"] = "another-model"
    path.write_text(json.dumps(changed))
    with pytest.raises(ValueError, match="2 different VLMs"):
        load_run(tmp_path / "run")
    # Resuming a folder whose episodes came from another VLM is refused before any episode runs. The
    # folder's VLM comes from vlm.json (written by the first run), or from the episodes when it is absent.
    held = tmp_path / "run" / "vlm.json"
    assert json.loads(held.read_text()) == summaries[1]["vlm"]
    shutil.rmtree(episodes_dir(tmp_path / "run") / summaries[1]["episode_id"])
    held.unlink()
    capsys.readouterr()
    assert main(bench) == 2
    assert "holds episodes of VLM another-model" in capsys.readouterr().err
    assert json.loads(held.read_text())["model_id"] == "another-model"
    assert not (episodes_dir(tmp_path / "run") / summaries[1]["episode_id"]).exists()


@pytest.fixture(scope="module")
def small_calibration(tmp_path_factory):
    """A calibration valid for the built-in VLM and the SMALL semantic config (threshold 1.5)."""
    run = load_sim_run("semantic", SMALL)
    vlm = make_vlm(run.method.vlm)
    cal = Calibration(eps=0.1, n=200, threshold=1.5, vlm_id=vlm.info.model_id, prompt_version=vlm.info.prompt_version,
                      config_hash=run.exploration_hash())
    return cal.save(tmp_path_factory.mktemp("cal") / "small.json")


def test_demo_prints_steps_and_writes_the_episode(tmp_path, capsys, small_calibration):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--no-rerun"] + SMALL
                + [f"stop.calibration={small_calibration}"]) == 0
    out = capsys.readouterr().out
    assert "question:" in out and "believes: prediction set" in out and "decides:" in out and "answer:" in out
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["stop_policy"] == "conformal" and summary["answer"] is not None
    rows = read_records(tmp_path / "demo" / "record.jsonl")
    assert all(r.conformal is not None for r in vlm_rows(rows))
    assert (tmp_path / "demo" / "episode.png").is_file() and (tmp_path / "demo" / "map.png").is_file()


def test_run_custom_question(tmp_path, capsys, small_calibration):
    args = ["run", "--question", "What colour is the sofa?", "--choices", "red", "blue", "green", "--scene", "3",
            "--rooms", "4", "--out", str(tmp_path / "run"), "--no-rerun"]
    overrides = SMALL + [f"stop.calibration={small_calibration}"]
    assert main(args + overrides) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["choices"] == ["red", "blue", "green"] and summary["success"] is None
    assert summary["answer"] in (0, 1, 2)
    rows = read_records(tmp_path / "run" / "record.jsonl")
    assert rows and all(r.truth.answerable is None for r in rows)  # no simulator oracle for custom questions
    capsys.readouterr()
    assert main(args + ["--answer", "purple"] + overrides) != 0
    assert "not one of" in capsys.readouterr().err
    with pytest.raises(ValueError, match="distinct choices"):
        CustomQuestion("x", "Is it?", ["yes"])


@pytest.mark.parametrize("preset", ["hm-eqa", "realsense"])
def test_shipped_calibrations_match_the_builtin_vlm_and_semantic_config(preset):
    from eqa.sim_driver import shipped_calibration_path

    run = load_sim_run("semantic", [f"sim.camera.preset={preset}"])
    vlm = make_vlm(run.method.vlm)
    cals = [Calibration.load(shipped_calibration_path("semantic", eps, preset)) for eps in (0.05, 0.1, 0.2)]
    for cal, eps in zip(cals, (0.05, 0.1, 0.2)):
        cal.check(vlm.info.model_id, vlm.info.prompt_version, run.exploration_hash(), camera=run.sim.camera.describe())
        assert cal.eps == eps and cal.n >= 200 and math.isfinite(cal.threshold) and 1.0 <= cal.threshold <= 2.0
    # Smaller eps (more coverage) never gives a smaller threshold.
    assert cals[0].threshold >= cals[1].threshold >= cals[2].threshold
