"""The EQA agent on its own: fed frames that do not come from the simulator (saved to disk and loaded back in
a process where the simulator cannot be imported), it makes the same decisions as in the simulator; its
look-around, records and answer follow the method config."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from agent_io import decision_json, save_frames
from eqa.agent import EQAAgent, EQAQuestion
from eqa.config import load_config
from eqa.method import MethodConfig
from eqa.episode import Episode, EpisodeInterrupted, run_episode
from eqa.records import Action, Outcome, Reason, read_records
from sim.config import SimConfig
from sim.env import SimEnv, SimEpisode
from sim.house import generate_house
from sim.questions import QuestionConfig, generate_questions
from vlm import make_vlm

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["agent.budget_factor=0.5"]  # a short budget
CAMERA = ["camera.width=160", "camera.height=120"]
DECISIONS = 8  # at most; the budget (4 here) ends the episode first


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The agent driven by the built-in simulator for DECISIONS decisions (look-around included); each step's
    frames and outcome saved to disk, with the decisions made."""
    folder = tmp_path_factory.mktemp("frames")
    q = generate_questions("test", 1, 3, QuestionConfig(n_rooms=4, questions_per_house=1))[0]
    method = load_config(MethodConfig, "semantic", SMALL)
    env = SimEnv(generate_house(q.house_seed, q.n_rooms), load_config(SimConfig, "sim", CAMERA))
    agent = EQAAgent(method, make_vlm(method.vlm))
    agent.reset(EQAQuestion(q.question, tuple(q.choices)), q.house_seed, q.floor_area_m2)
    frames, outcome, steps = [env.reset(SimEpisode(start=tuple(q.start)))], None, []
    while len([s for s in steps if s["record"] is not None]) < DECISIONS:
        save_frames(folder / f"step{len(steps):03d}.npz", frames)
        d = agent.step(frames, outcome)
        steps.append({"decision": decision_json(d), "outcome": None if outcome is None else outcome.__dict__,
                      "record": d.record})
        if d.action == Action.STOP:
            break
        if d.action == Action.MOVE:
            r = env.move_to(d.T_world_base, d.max_distance)
            outcome = Outcome(r.distance, r.blocked, r.reached)
        else:
            env.turn(d.angle)
            outcome = None
        frames = env.observe()
    (folder / "steps.json").write_text(json.dumps([{k: v for k, v in s.items() if k != "record"} for s in steps]))
    (folder / "question.json").write_text(json.dumps({"text": q.question, "choices": q.choices,
                                                      "seed": q.house_seed, "area": q.floor_area_m2}))
    return folder, steps, agent


REPLAY = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    sys.modules["sim"] = None  # the simulator cannot be imported here
    sys.path.insert(0, sys.argv[2])
    from agent_io import decision_json, load_frames
    from eqa.agent import EQAAgent, EQAQuestion
    from eqa.config import load_config
    from eqa.method import MethodConfig
    from eqa.records import Outcome
    from vlm import make_vlm

    folder = Path(sys.argv[1])
    steps = json.loads((folder / "steps.json").read_text())
    q = json.loads((folder / "question.json").read_text())
    method = load_config(MethodConfig, "semantic", json.loads(sys.argv[3]))
    agent = EQAAgent(method, make_vlm(method.vlm))
    agent.reset(EQAQuestion(q["text"], tuple(q["choices"])), q["seed"], q["area"])
    made = []
    for i, step in enumerate(steps):
        outcome = Outcome(**step["outcome"]) if step["outcome"] else None
        made.append(decision_json(agent.step(load_frames(folder / f"step{i:03d}.npz"), outcome)))
    assert not any(m == "sim" or m.startswith("sim.") for m, mod in sys.modules.items() if mod is not None)
    print(json.dumps(made))
""")


@pytest.mark.integration
def test_agent_decides_the_same_on_frames_loaded_from_disk_without_the_simulator(live):
    folder, steps, _ = live
    out = subprocess.run([sys.executable, "-c", REPLAY, str(folder), str(Path(__file__).parent), json.dumps(SMALL)],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    made = json.loads(out.stdout.splitlines()[-1])
    expected = [s["decision"] for s in steps]
    assert [m["action"] for m in made] == [e["action"] for e in expected]
    assert made == expected
    assert sum(m["action"] == "move" for m in made) >= 2  # it went somewhere


@pytest.mark.integration
def test_look_around_then_decisions_with_records(live):
    _, steps, agent = live
    look = [s for s in steps if s["record"] is None]
    assert len(look) == 4 and all(s["decision"]["angle"] == pytest.approx(np.pi / 2) for s in look)
    records = [s["record"] for s in steps if s["record"] is not None]
    assert [r.step for r in records] == list(range(len(records))) and len(records) == agent.budget + 1
    first = records[0]
    assert len(first.frames) == 5 and len(first.views) == 4  # start frame + 4 turns; the 4 turns scored
    assert first.newest.p_answer is not None and all(v.p_answer is None for v in first.earlier_views)
    assert all(r.truth.answerable is None for r in records)  # no observer attached: no ground truth
    for r in records[:-1]:
        assert r.action in (Action.MOVE, Action.TURN) and r.plan is not None
        assert (r.reason is None) == (r.action == Action.MOVE)
    assert records[-1].action == Action.STOP and records[-1].reason == Reason.BUDGET
    answer = agent.answer()
    assert answer.stop_reason == Reason.BUDGET and answer.rule == "most-relevant-step"
    assert answer.policy == "fixed-budget" and not answer.confident and answer.prediction_set is None
    best = max(records, key=lambda r: r.relevance)
    assert answer.index == int(np.argmax(best.p_answer)) and answer.letter == "ABCD"[answer.index]
    assert answer.probabilities == best.p_answer and answer.step == best.step


def test_agent_refuses_what_it_cannot_do():
    method = load_config(MethodConfig, "semantic")
    with pytest.raises(ValueError, match="needs a VLM"):
        EQAAgent(method)
    with pytest.raises(ValueError, match="calibration"):
        EQAAgent(load_config(MethodConfig, "semantic", ["stop.policy=conformal"]), make_vlm(method.vlm))
    agent = EQAAgent(method, make_vlm(method.vlm))
    with pytest.raises(ValueError, match="give the agent a question"):
        agent.reset(None)
    with pytest.raises(RuntimeError, match="reset"):
        EQAAgent(MethodConfig()).step([])
    oracle = EQAAgent(load_config(MethodConfig, "oracle-direction"), make_vlm(method.vlm))
    with pytest.raises(ValueError, match="direction oracle"):
        oracle.reset(EQAQuestion("Is it on?", ("Yes", "No")))
    fbe = EQAAgent(MethodConfig())
    fbe.reset(None)
    with pytest.raises(ValueError, match="at least one frame"):
        fbe.step([])
    with pytest.raises(ValueError, match="distinct choices"):
        EQAQuestion("Is it?", ("yes", "yes"))


def test_stop_is_final(tmp_path):
    env = SimEnv(generate_house(3, 4), load_config(SimConfig, "sim", CAMERA))
    agent = EQAAgent(load_config(MethodConfig, "fbe", ["agent.default_budget=1", "agent.look_around_turns=0"]))
    agent.reset(None)
    d = agent.step([env.reset(SimEpisode(start=None, seed=0))])
    assert d.action in (Action.MOVE, Action.TURN)
    env.move_to(d.T_world_base, d.max_distance) if d.action == Action.MOVE else env.turn(d.angle)
    d = agent.step(env.observe())
    assert d.action == Action.STOP and d.reason == Reason.BUDGET and agent.answer().stop_reason == Reason.BUDGET
    with pytest.raises(RuntimeError, match="stopped"):
        agent.step(env.observe())


def test_a_second_question_keeps_the_map_and_starts_a_new_value_map():
    """A robot asked again where it stands (after driving further than a frame may jump) continues its scene
    map; the semantic value map is the new question's. Without keep_map the map starts empty."""
    method = load_config(MethodConfig, "semantic", SMALL + ["agent.map.max_pose_jump=1.0"])
    env = SimEnv(generate_house(3, 4), load_config(SimConfig, "sim", CAMERA))
    agent = EQAAgent(method, make_vlm(method.vlm))
    question = EQAQuestion("Is the stove on?", ("Yes", "No"))
    agent.reset(question)
    first = env.reset(SimEpisode(start=None, seed=0))
    agent.step([first])
    seen, value_map = int(agent.map.explored.sum()), agent.value_map
    assert seen > 0 and len(agent.map.robot_path) == 1
    far = next(f for f in (env.reset(SimEpisode(start=None, seed=k)) for k in range(1, 50))
               if np.hypot(*(f.T_world_base[:2, 3] - first.T_world_base[:2, 3])) > 1.5)
    with pytest.raises(ValueError, match="jump"):
        agent.step([far])  # within one question, a frame this far from the last is an error
    agent.reset(question, keep_map=True)
    agent.step([far])
    assert int(agent.map.explored.sum()) > seen and len(agent.map.robot_path) == 2
    assert agent.value_map is not value_map
    agent.reset(question)
    assert agent.map.robot_path == [] and int(agent.map.explored.sum()) == 0


def test_an_interrupted_episode_keeps_its_records_and_ends_canceled(tmp_path):
    """An Env raising EpisodeInterrupted (a canceled ROS action) ends the episode: the records written stay,
    the summary says canceled, the pictures are drawn."""
    class CanceledOnThirdMove:
        def __init__(self, env):
            self.env, self.moves = env, 0

        def reset(self, episode=None):
            return self.env.reset(episode)

        def observe(self):
            return self.env.observe()

        def turn(self, angle):
            return self.env.turn(angle)

        def move_to(self, T, max_distance):
            self.moves += 1
            if self.moves == 3:
                raise EpisodeInterrupted("canceled by the user")
            return self.env.move_to(T, max_distance)

    method = load_config(MethodConfig, "semantic", ["agent.default_budget=20"])
    env = CanceledOnThirdMove(SimEnv(generate_house(3, 4), load_config(SimConfig, "sim", CAMERA)))
    agent = EQAAgent(method, make_vlm(method.vlm))
    episode = Episode("cancel", SimEpisode(start=None, seed=0), EQAQuestion("Is the stove on?", ("Yes", "No")), 0)
    seen = []  # (step, moves carried out when the decision was announced)
    summary = run_episode(env, agent, episode, tmp_path, rerun=False, progress=False,
                          on_decision=lambda r: seen.append((r.step, env.moves)))
    records = read_records(tmp_path / "record.jsonl")
    assert [step for step, _ in seen] == [r.step for r in records]
    assert [moves for _, moves in seen] == [0, 1, 2]  # each decision announced before the robot acts on it
    assert summary["interrupted"] == "canceled by the user" and summary["stop_reason"] == "canceled"
    assert len(records) == summary["decisions"] == 3 and records[-1].outcome is None
    assert agent.stopped and (tmp_path / "map.png").exists() and (tmp_path / "summary.json").exists()
    with pytest.raises(RuntimeError, match="stopped"):
        agent.step(env.observe())
