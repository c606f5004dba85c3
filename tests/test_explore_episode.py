"""FBE episodes end to end in built-in houses: records, summary, pictures, determinism."""
import json

import pytest
from PIL import Image

from eqa.config import load_config
from eqa.explore import ExploreConfig, explore_house
from eqa.records import read_records

SMALL = ["sim.camera.width=320", "sim.camera.height=240", "n_rooms=4"]


def _run(tmp_path, name, seed=3, extra=()):
    config = load_config(ExploreConfig, "fbe", SMALL + list(extra))
    out = tmp_path / name
    summary = explore_house(seed, out, config, rerun=False, progress=False)
    return summary, read_records(out / "record.jsonl"), out


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "timings"} for r in rows]


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("fbe"), "a")


def test_episode_folder_contents(episode):
    summary, rows, out = episode
    assert (out / "summary.json").is_file() and (out / "map.png").is_file() and (out / "map.npz").is_file()
    assert Image.open(out / "map.png").size[0] > 100
    assert json.loads((out / "summary.json").read_text())["decisions"] == summary["decisions"]
    assert len(rows) == summary["decisions"] + 1 and rows[-1]["action"] == "stop"
    for row in rows[:-1]:
        assert set(row) >= {"step", "pose", "action", "plan", "timings", "coverage", "collisions"}
        assert set(row["timings"]) >= {"map_s", "plan_s", "act_s"}
        if row["action"] == "move":
            plan = row["plan"]
            assert plan["goal"] is not None and plan["chosen"] is not None
            chosen = plan["frontiers"][plan["chosen"]]
            assert {"unexplored", "free", "distance", "score"} <= set(chosen)
            assert row["moved"] <= 2.5 + 1e-6  # max_move_per_step


def test_fbe_explores_a_small_house_without_collisions(episode):
    summary, rows, _ = episode
    assert summary["coverage"] >= 0.9
    assert summary["collisions"] == 0
    assert summary["decisions"] <= summary["budget"]
    cov = [r["coverage"] for r in rows]
    assert cov == sorted(cov)  # explored area never shrinks


def test_same_seed_same_record(tmp_path, episode):
    _, rows_a, _ = episode
    _, rows_b, _ = _run(tmp_path, "b")
    assert _strip(rows_a) == _strip(rows_b)
    _, rows_c, _ = _run(tmp_path, "c", seed=4)
    assert _strip(rows_c) != _strip(rows_a)


def test_rerun_recording_is_written(tmp_path):
    pytest.importorskip("rerun")
    config = load_config(ExploreConfig, "fbe", SMALL + ["agent.default_budget=3", "agent.budget_factor=0.2"])
    explore_house(5, tmp_path / "r", config, rerun=True, progress=False)
    rrd = tmp_path / "r" / "episode.rrd"
    assert rrd.is_file() and rrd.stat().st_size > 10_000


def _squeeze_episode(squeeze_radius):
    """House 1000012 from a calibration question's start: the only way on leads past a table corner that
    the map's inflation (robot radius + half a cell) closes. Returns (agent, decisions, robot x per decision)."""
    from dataclasses import replace

    from eqa.agent import Agent, AgentConfig
    from nav.config import PlannerConfig
    from sim.config import SimConfig
    from sim.env import SimEnv, SimEpisode
    from sim.house import generate_house

    sim = SimConfig()
    scene = generate_house(1000012, None, sim.house, sim.robot)
    env = SimEnv(scene, sim)
    agent = Agent(replace(AgentConfig(), planner=PlannerConfig(squeeze_radius=squeeze_radius)))
    agent.reset(0, scene.floor_area())
    agent.observe([env.reset(SimEpisode(start=(5.675, 0.825, 0.193)))])
    for angle in agent.look_around_angles():
        env.turn(angle)
        agent.observe(env.observe())
    decisions, xs = [], []
    for _ in range(4):
        d = agent.decide()
        decisions.append(d)
        if d.kind == "stop":
            break
        if d.kind == "move":
            agent.report_motion(env.move_to(d.T_world_base, d.max_distance).distance)
        else:
            env.turn(d.angle)
        agent.observe(env.observe())
        xs.append(float(agent.pose[0, 3]))
    return agent, decisions, xs


def test_squeeze_radius_leads_through_a_gap_the_map_inflation_closes():
    agent, decisions, xs = _squeeze_episode(None)
    assert decisions[1].kind == "stop" and decisions[1].reason == "explored"  # the old behaviour: gives up
    assert agent.map.frontiers() == [] and len(agent.map.frontiers(0.15)) > 0
    agent, decisions, xs = _squeeze_episode(0.15)
    assert [d.kind for d in decisions] == ["move"] * 4
    assert decisions[1].plan.squeeze and not decisions[0].plan.squeeze
    assert xs[-1] > 9.0  # through the doorway beyond the table (x about 8.5 m) and on
    assert not any(d.plan.squeeze for d in decisions[3:])  # past the gap, frontiers at the map's radius again
