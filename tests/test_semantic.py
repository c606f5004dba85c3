"""Semantic exploration: candidate points, projection, one batched VLM call per view, SV into the value map."""
import math

import numpy as np
import pytest

from eqa.method import SemanticConfig
from eqa.records import Action, read_records
from eqa.semantic import horizontal_fov, semantic_value, view_usable
from eqa.sim_driver import load_sim_run, run_question
from eqa.sim_observers import path_distance_oracle
from mapping.frame import Frame
from mapping.scene_map import SceneMap
from nav.semantic_points import candidate_points, farthest_points
from sim.env import SimEnv, SimEpisode
from sim.questions import QuestionConfig, generate_questions
from sim.testing import room_scene

SMALL = ["sim.camera.width=160", "sim.camera.height=120", "agent.default_budget=5", "agent.budget_factor=0.5"]


@pytest.fixture(scope="module")
def scanned():
    env = SimEnv(room_scene(width=12.0, depth=8.0))
    m = SceneMap()
    m.integrate(env.reset(SimEpisode(start=(-4.0, 0.0, 0.0))))
    return env, m


def test_candidate_points_are_in_view_in_range_in_sight_and_spread(scanned):
    env, m = scanned
    pts = candidate_points(m, (-4.0, 0.0), 0.0, math.radians(120), k=3, min_dist=2.0, max_dist=10.0, merge=1.0)
    assert 1 <= len(pts) <= 3
    d = np.hypot(pts[:, 0] + 4.0, pts[:, 1])
    assert np.all((d >= 2.0 - 1e-9) & (d <= 10.0 + 1e-9))
    assert np.all(np.abs(np.arctan2(pts[:, 1], pts[:, 0] + 4.0)) <= math.radians(60) + 1e-9)
    gaps = [np.hypot(*(a - b)) for i, a in enumerate(pts) for b in pts[i + 1:]]
    assert all(g >= 1.0 for g in gaps)
    nav = m.navigable()
    rc = m.spec.world_to_cell(pts)
    assert nav[rc[:, 0], rc[:, 1]].all()
    # Facing the other way (nothing mapped there yet): no candidates.
    assert len(candidate_points(m, (-4.0, 0.0), math.pi, math.radians(120))) == 0


def test_farthest_points_merge():
    xy = np.array([[0.0, 0.0], [0.5, 0.0], [5.0, 0.0], [5.2, 0.1]])
    idx = farthest_points(xy, 4, 1.0, first=(-1.0, 0.0))
    assert sorted(idx.tolist()) in ([0, 2], [0, 3], [1, 2], [1, 3])


def test_semantic_value_forms_and_oracle():
    cfg = SemanticConfig(tau_local=2.0, tau_global=1.0)
    assert semantic_value([0.5], 0.3, cfg)[0] == pytest.approx(math.exp(2 * 0.5 + 0.3))
    assert semantic_value([0.5], 0.3, SemanticConfig(combine="product"))[0] == pytest.approx(0.15)
    with pytest.raises(ValueError, match="combine"):
        SemanticConfig(combine="sum")


def test_path_distance_oracle_prefers_the_point_nearest_the_goal_by_path(scanned):
    env, _ = scanned
    oracle = path_distance_oracle(env.freespace, np.array([[4.0, 0.0]]), temperature=1.0)
    lsv, gsv = oracle(np.array([[-3.0, 0.0], [3.0, 1.0], [0.0, 0.0], [40.0, 40.0]]))  # the last is off the grid
    assert np.argmax(lsv) == 1 and lsv.sum() == pytest.approx(1.0) and gsv == 1.0
    assert lsv[3] < lsv[0] < lsv[2] < lsv[1]  # unreachable counts as 10 m beyond the farthest point


def test_horizontal_fov_comes_from_the_intrinsics(scanned):
    env, _ = scanned
    frame = env.reset(SimEpisode(start=(-4.0, 0.0, 0.0)))
    assert horizontal_fov(frame) == pytest.approx(math.radians(env.config.camera.hfov_deg), abs=1e-12)


def test_unusable_views_are_skipped(scanned):
    env, _ = scanned
    f = env.reset(SimEpisode(start=(-4.0, 0.0, 0.0)))
    cfg = SemanticConfig()
    assert view_usable(f, cfg) == (True, "")
    dark = Frame(np.zeros_like(f.rgb), f.depth, f.intrinsics, f.T_world_cam, 0.0)
    assert not view_usable(dark, cfg)[0]
    blind = Frame(f.rgb, np.zeros_like(f.depth), f.intrinsics, f.T_world_cam, 0.0)
    ok, reason = view_usable(blind, cfg)
    assert not ok and "depth" in reason


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("transformers")
    from vlm_fixtures import build_tiny_hf_model
    return build_tiny_hf_model(tmp_path_factory.mktemp("tiny"), "qwen2_vl", seed=0)


@pytest.mark.integration
@pytest.mark.parametrize("oracle", [False, True])
def test_semantic_episode_records_points_scores_and_one_call_per_view(tiny_model, tmp_path, oracle):
    from vlm import make_vlm

    q = generate_questions("test", 1, 3, QuestionConfig(n_rooms=4, questions_per_house=1))[0]
    run = load_sim_run("oracle-direction" if oracle else "semantic",
                       SMALL + ["vlm.backend=hf", f"vlm.hf.model_path={tiny_model}", "early_stop=false"])
    method = run.method
    vlm = make_vlm(method.vlm)
    vlm.accounting.reset()
    summary = run_question(q, run, tmp_path, vlm=vlm)
    rows = read_records(tmp_path / "record.jsonl")
    # The first decision also scores the look-around's other three headings, from the start.
    earlier = rows[0].earlier_views
    assert len(earlier) == method.agent.look_around_turns - 1
    assert all(e.xy == pytest.approx(rows[0].pose[:2]) for e in earlier)
    yaws = [e.yaw for e in earlier] + [rows[0].pose[2]]
    gaps = [abs(math.remainder(a - b, 2 * math.pi)) for i, a in enumerate(yaws) for b in yaws[i + 1:]]
    assert min(gaps) == pytest.approx(math.pi / 2, abs=1e-6)
    # After a move, the frames captured along the way (every capture_spacing m before its end) are scored
    # from where they were taken: between the previous decision's pose and this one, with candidate points
    # min_dist..max_dist from there; after a turn there is only the turned view.
    spacing = run.sim.capture_spacing
    for prev, r in zip(rows, rows[1:]):
        along = r.earlier_views
        if along:  # the frames integrated: those captured along the way and the one at the end of the move
            assert len(r.frames) == len(along) + 1 and r.frames[-1].stamp == r.stamp
        if prev.action != Action.MOVE:
            assert not along
            continue
        assert len(along) == len(np.arange(spacing, prev.outcome.moved - 1e-6, spacing))
        for e in along:
            assert 0 < math.dist(e.xy, prev.pose[:2]) <= prev.outcome.moved + 1e-6
            assert 0 < math.dist(e.xy, r.pose[:2]) <= prev.outcome.moved + 1e-6
            for c in e.candidates:
                assert method.semantic.min_dist - 0.1 <= math.dist(c.xy, e.xy) <= method.semantic.max_dist + 0.1
    assert any(r.earlier_views for r in rows[1:]), "no move captured a frame on the way"
    every_earlier = [e for r in rows for e in r.earlier_views]
    # One batched call per view: every decision's view, and each earlier view with a visible point (its
    # direction + worth-exploring; with the oracle those need no model).
    earlier_calls = 0 if oracle else sum(e.sv is not None for e in every_earlier)
    assert vlm.accounting.totals()["calls"] == len(rows) + earlier_calls == summary["vlm_calls"]
    written = [v for r in rows for v in r.views if v.sv is not None]
    assert any(r.newest.sv for r in rows), "no newest view wrote semantic values"
    assert any(e.sv is not None for e in earlier), "no look-around view wrote semantic values"
    for sem in written:
        visible = [c for c in sem.candidates if c.status == "visible"]
        assert len(visible) == len(sem.sv) == len(sem.lsv) and 1 <= len(visible) <= 3
        assert sum(sem.lsv) == pytest.approx(1.0, abs=1e-5)
        assert sem.source == ("oracle" if oracle else "vlm")
        expected = np.exp(np.array(sem.lsv) + sem.gsv)
        assert np.allclose(sem.sv, expected, rtol=1e-6)
        for c in visible:
            u, v = c.pixel
            assert 0 <= u < 160 and 0 <= v < 120
    # Frontier scoring reads the written values.
    scored = [f for r in rows if r.plan for f in r.plan.frontiers]
    assert any((f.value or 0.0) > 0 or (f.value_along or 0.0) > 0 for f in scored)


@pytest.mark.integration
def test_earlier_views_and_the_views_on_the_way_can_be_left_out(tiny_model, tmp_path):
    from vlm import make_vlm

    q = generate_questions("test", 1, 3, QuestionConfig(n_rooms=4, questions_per_house=1))[0]
    run = load_sim_run("semantic", SMALL + ["vlm.backend=hf", f"vlm.hf.model_path={tiny_model}", "early_stop=false",
                                            "semantic.earlier_views=false"])
    vlm = make_vlm(run.method.vlm)
    vlm.accounting.reset()
    summary = run_question(q, run, tmp_path, vlm=vlm)
    rows = read_records(tmp_path / "record.jsonl")
    assert all(len(r.views) == 1 for r in rows)
    assert vlm.accounting.totals()["calls"] == len(rows) == summary["vlm_calls"]
    # views_on_the_way=false: the look-around's views only
    run = load_sim_run("semantic", SMALL + ["vlm.backend=hf", f"vlm.hf.model_path={tiny_model}", "early_stop=false",
                                            "semantic.views_on_the_way=false"])
    run_question(q, run, tmp_path / "look-around", vlm=vlm)
    rows = read_records(tmp_path / "look-around" / "record.jsonl")
    assert len(rows[0].earlier_views) == run.method.agent.look_around_turns - 1
    assert any(r.action == Action.MOVE and r.outcome.moved > 1.0 for r in rows[:-1])
    assert all(not r.earlier_views for r in rows[1:])


@pytest.mark.integration
def test_views_on_the_way_pick_candidate_points_around_where_they_were_taken(tmp_path):
    """In a 2..3 m ring (no merging), every scored view's candidate points lie in the ring around the pose
    that view was taken from, the frames captured along a move included (not around the robot's pose
    at the decision)."""
    from vlm import make_vlm

    q = generate_questions("test", 1, 3, QuestionConfig(n_rooms=4, questions_per_house=1))[0]
    run = load_sim_run("semantic", SMALL + ["early_stop=false", "semantic.min_dist=2.0", "semantic.max_dist=3.0",
                                            "semantic.merge=0.0"])
    run_question(q, run, tmp_path, vlm=make_vlm(run.method.vlm))
    rows = read_records(tmp_path / "record.jsonl")
    views = [(r.newest, r.pose[:2]) for r in rows] + [(e, e.xy) for r in rows[1:] for e in r.earlier_views]
    checked = 0
    for sem, xy in views:
        for c in sem.candidates:
            assert 2.0 - 1e-6 <= math.dist(c.xy, xy) <= 3.0 + 1e-6
            checked += 1
    on_the_way = sum(len(e.candidates) for r in rows[1:] for e in r.earlier_views)
    assert on_the_way >= 3 and checked > on_the_way


def test_narration_names_the_look_around_views():
    from eqa.narrate import describe
    from eqa.records import Outcome, PlanRecord, StepRecord, ViewRecord

    newest = ViewRecord(0.0, (0.0, 0.0), 0.0, p_answer=[0.5, 0.5], relevance=0.1, lsv=[1.0], gsv=0.3, sv=[3.7])
    look = ViewRecord(0.0, (0.0, 0.0), math.pi / 2, lsv=[0.2, 0.8], gsv=0.5, sv=[2.0, 3.7])
    dark = ViewRecord(0.0, (0.0, 0.0), math.pi, skipped="image too dark")
    record = StepRecord(0, 0.0, (0.0, 0.0, 0.0), 10, action=Action.MOVE, views=[look, dark, newest],
                        outcome=Outcome(2.0), plan=PlanRecord("move"))
    text = "\n".join(describe(record))
    assert "relevance 0.10, P(answer) A 0.50 B 0.50" in text
    assert "look-around 90 deg: directions 0.20 0.80, worth exploring 0.50" in text
    assert "180 deg" not in text and "directions 1.00, worth exploring 0.30" in text
    record.step = 3
    look.xy = (1.0, -2.0)
    assert "on the way at (1.0, -2.0): directions 0.20 0.80" in "\n".join(describe(record))
    record.plan = PlanRecord("move", goal=(4.0, 1.0, 0.0), approach=(5.2, 1.0))
    assert "move 2.0 m toward (4.0, 1.0) to look closer at the target located at (5.2, 1.0)" in \
        "\n".join(describe(record))


@pytest.mark.integration
def test_approach_goes_to_look_closer_at_the_located_target(tmp_path):
    """approach_relevance: every view's one call also locates the target (builtin VLM); a target located in
    range with enough relevance makes that decision a move toward a pose 0.8..1.5 m from it, facing it."""
    from vlm import make_vlm

    q = generate_questions("test", 1, 3, QuestionConfig(n_rooms=4, questions_per_house=1))[0]
    run = load_sim_run("semantic", SMALL + ["early_stop=false", "semantic.approach_relevance=1e-6"])
    vlm = make_vlm(run.method.vlm)
    summary = run_question(q, run, tmp_path, vlm=vlm)
    rows = read_records(tmp_path / "record.jsonl")
    earlier = [e for r in rows for e in r.earlier_views]
    # every usable view is located (the look-around's and those on the way too, in their one call each)
    assert sum(e.target is not None for e in earlier) == sum(e.skipped is None for e in earlier) >= 2
    assert summary["vlm_calls"] == len(rows) + sum(e.target is not None for e in earlier)
    targets = [v.target for r in rows for v in r.views if v.target is not None]
    assert len(targets) >= len(rows) - 1
    for t in targets:
        u, v = t.pixel
        assert 0 <= u < 160 and 0 <= v < 120 and 0 <= t.relevance <= 1
    approached = [r for r in rows if r.plan and r.plan.approach is not None]
    assert approached, "no decision approached a located target"
    for r in approached:
        # the most relevant located target of the decision's views
        t = max((v.target for v in [r.newest] + r.earlier_views if v.target and v.target.approach),
                key=lambda t: t.relevance)
        assert r.plan.approach == pytest.approx(t.xy, abs=1e-3)
        gx, gy, gyaw = r.plan.goal
        tx, ty = t.xy
        assert 0.8 - 0.1 <= math.hypot(tx - gx, ty - gy) <= 1.5 + 0.1
        assert abs(math.remainder(gyaw - math.atan2(ty - gy, tx - gx), 2 * math.pi)) < 1e-2
        assert r.plan.chosen is None
    # off: no locate query, no target
    plain = load_sim_run("semantic", SMALL + ["early_stop=false", "semantic.approach_relevance=null"])
    run_question(q, plain, tmp_path / "plain", vlm=vlm)
    assert all(v.target is None for r in read_records(tmp_path / "plain" / "record.jsonl") for v in r.views)
