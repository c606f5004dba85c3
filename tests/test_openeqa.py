"""Open questions (OpenEQA): free-text answers from the hf backend, directly and through `eqa serve-vlm`, open
questions in the agent and its stop policies, Habitat camera poses, and OpenEQA's HM3D episodes run on
exported houses laid out as HM3D scenes with their start poses as OpenEQA's extracted frames."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from eqa.agent import EQAAgent, EQAQuestion
from eqa.method import MethodConfig, StopConfig
from eqa.records import StepRecord, ViewRecord
from eqa.stopping import StopState, make_stop
from mapping.frame import base_pose, camera_mount
from sim.habitat_frame import (R_GLCAM_OPTICAL, R_WORLD_HABITAT, camera_heading, camera_matrix_to_camera_pose,
                               matrix_quaternion_wxyz, sensor_state_to_camera_pose)
from vlm import VLMConfig, make_vlm

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from vlm_fixtures import build_tiny_hf_model, random_image  # noqa: E402

SMALL = ["sim.camera.width=320", "sim.camera.height=240"]
EPISODE = "hm3d-v0/000-hm3d-BFRyYbPCCPE"  # three questions of the 184-question subset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_hf_model(tmp_path_factory.mktemp("qwen"), "qwen2_vl", seed=0)


@pytest.fixture(scope="module")
def hf_vlm(tiny):
    from vlm.backends.hf import HFConfig

    return make_vlm(VLMConfig(backend="hf", sections={"hf": HFConfig(model_path=str(tiny))}))


def _plain_generate(path: Path, images, text: str, max_tokens: int) -> str:
    """Independent path: transformers' own chat template, processor and greedy generate."""
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    proc = AutoProcessor.from_pretrained(str(path))
    model = AutoModelForImageTextToText.from_pretrained(str(path)).eval()
    msgs = [{"role": "user", "content": [{"type": "image"}] * len(images) + [{"type": "text", "text": text}]}]
    chat = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    inputs = proc(text=[chat], images=[Image.fromarray(im) for im in images], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False)
    return proc.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def test_hf_writes_the_greedy_reply_to_all_views(tiny, hf_vlm):
    views = [random_image(1), random_image(2)]
    reply = hf_vlm.answer_open(views, "What is on the kitchen counter?", max_tokens=6)
    assert reply.n_images == 2 and "What is on the kitchen counter?" in reply.prompt and "2 views" in reply.prompt
    assert reply.text == _plain_generate(tiny, views, reply.prompt, 6)
    assert reply.tokens_out == 6 and reply.tokens_in > 2 * 16  # image tokens counted
    other = hf_vlm.answer_open(views[::-1], "What is on the kitchen counter?", max_tokens=6)
    assert other.text == _plain_generate(tiny, views[::-1], other.prompt, 6)
    assert hf_vlm.accounting.records[-1].kinds == ("open_answer",)


def test_backends_that_cannot_write_text_refuse_open_questions():
    vlm = make_vlm(VLMConfig())  # builtin
    assert not vlm.writes_text
    with pytest.raises(ValueError, match="cannot write free-text answers"):
        vlm.answer_open([random_image(0)], "What is on the table?")
    method = MethodConfig(name="m", vlm=VLMConfig(), stop=StopConfig(policy="relevance"))
    with pytest.raises(ValueError, match="cannot write text"):
        EQAAgent(method, vlm).reset(EQAQuestion("What is on the table?"))


def test_open_questions_need_a_stop_policy_without_answer_probabilities(hf_vlm):
    method = MethodConfig(name="m", vlm=VLMConfig(), stop=StopConfig(policy="max-prob"))
    with pytest.raises(ValueError, match="needs answer choices"):
        EQAAgent(method, hf_vlm).reset(EQAQuestion("What is on the table?"))
    with pytest.raises(ValueError, match="2 to 6 distinct choices"):
        EQAQuestion("What is on the table?", ("a cup",))
    assert EQAQuestion("What is on the table?").is_open and not EQAQuestion("Q?", ("a", "b")).is_open


def _step(step: int, relevance: float) -> StepRecord:
    """A decision whose newest view has this relevance and no answer probabilities (an open question)."""
    return StepRecord(step=step, stamp=0.0, pose=(0, 0, 0), budget=10,
                      views=[ViewRecord(0.0, (0.0, 0.0), 0.0, relevance=relevance)])


def test_relevance_stop_reads_relevance_alone_for_open_questions():
    policy = make_stop(StopConfig(policy="relevance", relevance_threshold=0.7), n_choices=0)
    state = StopState(decisions=1, budget=10)
    for step, relevance in enumerate([0.3, 0.6]):
        policy.observe(_step(step, relevance))
        assert not policy.should_stop(state)
    assert policy.best_step == 1 and policy.best_answer is None
    policy.observe(_step(2, 0.9))
    assert policy.should_stop(state) and policy.best_step == 2


def test_serve_vlm_writes_text_for_the_openai_client(tiny, hf_vlm):
    from vlm.backends.hf import HFConfig, HFScorer
    from vlm.backends.openai import OpenAIConfig, OpenAIScorer
    from vlm.prompted import PromptedVLM
    from vlm.server import ServerConfig, VLMServer

    scorer = HFScorer(HFConfig(model_path=str(tiny)))
    with VLMServer(scorer, ServerConfig(port=0, model_name="tiny", max_new_tokens=16, max_images=3)) as server:
        remote = PromptedVLM(OpenAIScorer(OpenAIConfig(base_url=server.base_url, model="tiny", api_key_env=None,
                                                       timeout_s=60, max_retries=0)))
        assert remote.writes_text
        views = [random_image(3), random_image(4)]
        got = remote.answer_open(views, "Where is the red mug?", max_tokens=5)
        want = hf_vlm.answer_open(views, "Where is the red mug?", max_tokens=5)
        assert got.text == want.text and got.tokens_out == want.tokens_out == 5
        with pytest.raises(Exception, match="max_tokens must be an integer in 1..16"):
            remote.answer_open(views, "Where is the red mug?", max_tokens=17)
        with pytest.raises(Exception, match="at most 3 image"):
            remote.answer_open([random_image(i) for i in range(4)], "Where is the red mug?", max_tokens=5)
        # next-token scoring through the same server is unchanged
        assert 0 <= remote.relevance(views[0], "Where is the red mug?") <= 1


def _habitat_camera_matrix(T_world_cam: np.ndarray) -> np.ndarray:
    """The 4x4 Habitat (y-up world, OpenGL camera) camera-to-world matrix of an optical camera pose."""
    T = np.eye(4)
    T[:3, :3] = R_WORLD_HABITAT.T @ T_world_cam[:3, :3] @ R_GLCAM_OPTICAL
    T[:3, 3] = R_WORLD_HABITAT.T @ T_world_cam[:3, 3]
    return T


def test_habitat_camera_matrices_map_to_camera_poses_and_headings():
    T_world_cam = base_pose(1.0, -2.0, 0.7) @ camera_mount(1.2, math.radians(10))
    T_world_cam[2, 3] += 3.0  # on an upper floor
    T_h = _habitat_camera_matrix(T_world_cam)
    np.testing.assert_allclose(camera_matrix_to_camera_pose(T_h), T_world_cam, atol=1e-12)
    # the same camera given as a Habitat sensor state (position, OpenGL frame quaternion)
    np.testing.assert_allclose(sensor_state_to_camera_pose(T_h[:3, 3], matrix_quaternion_wxyz(T_h[:3, :3])),
                               T_world_cam, atol=1e-9)
    assert camera_heading(T_world_cam) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="rigid"):
        camera_matrix_to_camera_pose(np.diag([2.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="4x4"):
        camera_matrix_to_camera_pose(np.eye(3))


def test_a_habitat_camera_matrix_written_out_by_hand():
    """Identity rotation at Habitat (1, 1.5, -2): an OpenGL camera looking along Habitat -z, i.e. world +y."""
    T_h = np.eye(4)
    T_h[:3, 3] = (1.0, 1.5, -2.0)
    T = camera_matrix_to_camera_pose(T_h)
    np.testing.assert_allclose(T[:3, 3], (1.0, 2.0, 1.5), atol=1e-12)
    np.testing.assert_allclose(T[:3, 2], (0.0, 1.0, 0.0), atol=1e-12)  # optical z: forward
    np.testing.assert_allclose(T[:3, 1], (0.0, 0.0, -1.0), atol=1e-12)  # optical y: image down = world down
    assert camera_heading(T) == pytest.approx(math.pi / 2)


def test_the_floor_below_a_camera_is_the_largest_surface_0_2_to_2_5_m_under_it(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    from sim.mesh_freespace import choose_floor
    from sim.mesh_io import load_mesh_scene

    def slab(x, y, z, size_x, size_y):
        return trimesh.creation.box((size_x, size_y, 0.02),
                                    trimesh.transformations.translation_matrix((x, y, z - 0.01)))

    # two storeys (z 0 and 3) and a bed-sized top on each (z 0.5 and 3.6, 3.2 m^2): a "highest surface" rule
    # would pick the beds
    parts = [slab(0, 0, 0.0, 10, 10), slab(2, 2, 0.5, 2, 1.6), slab(0, 0, 3.0, 8, 8), slab(2, 2, 3.6, 2, 1.6)]
    path = tmp_path / "storeys.ply"
    trimesh.util.concatenate(parts).export(path)
    mesh = load_mesh_scene(path, "z")
    assert choose_floor(mesh, below=3.0 + 1.3) == pytest.approx(3.0, abs=0.02)
    assert choose_floor(mesh, below=1.3) == pytest.approx(0.0, abs=0.02)
    with pytest.raises(ValueError, match="no floor found 0.2-2.5 m below the camera at 0.10 m"):
        choose_floor(mesh, below=0.1)


def test_a_server_whose_backend_cannot_write_text_refuses_text_replies():
    import http.client

    from vlm.backends.builtin import BACKEND, BuiltinConfig
    from vlm.imaging import to_data_url
    from vlm.server import ServerConfig, VLMServer

    body = {"max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": to_data_url(random_image(0))}},
        {"type": "text", "text": "What is on the table?"}]}]}
    with VLMServer(BACKEND.serve(BuiltinConfig()), ServerConfig(port=0)) as server:
        host, port = server.address
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        reply = conn.getresponse()
        assert reply.status == 400 and "max_tokens must be 1" in json.loads(reply.read())["error"]["message"]
        conn.close()


def test_an_open_question_is_answered_once_after_the_stop_and_a_failed_reply_keeps_the_episode(tiny, tmp_path):
    from eqa.sim_driver import CustomQuestion, load_sim_run, run_custom
    from vlm.errors import VLMConnectionError

    run = load_sim_run("semantic", ["vlm.backend=hf", f"vlm.hf.model_path={tiny}", "stop.policy=relevance",
                                    "agent.default_budget=2", "agent.budget_factor=0.1"] + SMALL)
    vlm = make_vlm(run.method.vlm)
    calls = []
    real = vlm.answer_open
    vlm.answer_open = lambda *a, **k: calls.append(1) or real(*a, **k)
    q = CustomQuestion(id="open-1", question="What is in the kitchen?", choices=[])
    summary = run_custom(q, 3, run, tmp_path / "ok", vlm=vlm)
    assert len(calls) == 1 and summary["answer_text"] == summary["open_answer"]["text"]

    def down(*args, **kwargs):
        raise VLMConnectionError("VLM server http://127.0.0.1:9/v1/chat/completions unavailable")

    vlm.answer_open = down
    summary = run_custom(q, 3, run, tmp_path / "down", vlm=vlm)
    assert summary["answer_text"] is None and "unavailable" in summary["open_answer_error"]
    assert (tmp_path / "down" / "episode.png").is_file() and summary["decisions"] >= 1


def _openeqa_layout(tmp_path: Path, house_seed: int) -> tuple[Path, Path, tuple[float, float, float]]:
    """An exported house laid out as HM3D scene 00800-BFRyYbPCCPE (z up, offset as an HM3D scene may be) and
    OpenEQA frames whose first camera pose stands at a free pose of it; returns (scenes, frames, that pose in
    the house's frame)."""
    from sim.config import SimConfig
    from sim.env import SimEnv
    from sim.house import generate_house
    from sim.mesh_export import export_house_glb

    config = SimConfig()
    scene = generate_house(house_seed, None, config.house, config.robot)
    x, y, yaw = SimEnv(scene, config).random_start(np.random.default_rng(1), clearance=0.4)
    offset = np.array([3.0, -5.0, 1.5])
    export_house_glb(scene, tmp_path / "scenes" / "00800-BFRyYbPCCPE", "BFRyYbPCCPE.basis", up="z", offset=offset)
    T_file_cam = base_pose(x + offset[0], y + offset[1], yaw) @ camera_mount(1.25, 0.0)
    T_file_cam[2, 3] += offset[2]
    frames = tmp_path / "frames"
    (frames / EPISODE).mkdir(parents=True)
    np.savetxt(frames / EPISODE / "00000.txt", _habitat_camera_matrix(T_file_cam), fmt="%.6f")
    return tmp_path / "scenes", frames, (x, y, yaw)


@pytest.mark.integration
def test_openeqa_runs_its_hm3d_questions_from_the_first_frame_and_writes_predictions(tiny, tmp_path, capsys):
    from eqa.cli import main
    from eqa.records import read_records

    scenes, frames, (x, y, yaw) = _openeqa_layout(tmp_path, 2)
    out = tmp_path / "bench"
    method = ["--method", "semantic", "vlm.backend=hf", f"vlm.hf.model_path={tiny}", "open_answer.max_tokens=4",
              "agent.default_budget=2", "agent.budget_factor=0.1"] + SMALL
    assert main(["bench", "--dataset", "openeqa", "--scenes", str(scenes), "--frames", str(frames), "--subset",
                 "--out", str(out)] + method + ["stop.policy=relevance"]) == 0
    said = capsys.readouterr().out
    assert "skipping 181 of 184 OpenEQA HM3D questions: no scene file" in said
    summaries = [json.loads((p / "summary.json").read_text()) for p in sorted((out / "episodes").iterdir())]
    assert len(summaries) == 3 and all(s["episode_history"] == EPISODE for s in summaries)
    for s, folder in zip(summaries, sorted((out / "episodes").iterdir())):
        assert s["choices"] == [] and s["answer"] is None and isinstance(s["answer_text"], str)
        assert s["open_answer"]["n_images"] >= 1 and s["question"] in s["open_answer"]["prompt"]
        assert s["truth_text"] and s["start_moved_m"] == 0.0 and (folder / "episode.png").is_file()
        first = read_records(folder / "record.jsonl")[0]
        # the start is the frame's camera pose: the house's xy plus the scene file's offset, the camera's heading
        assert first.pose[0] == pytest.approx(x + 3.0, abs=1e-6) and first.pose[1] == pytest.approx(y - 5.0, abs=1e-6)
        assert first.frames[0].yaw == pytest.approx(yaw, abs=1e-6)
    predictions = json.loads((out / "openeqa-predictions.json").read_text())
    assert [p["question_id"] for p in predictions] == sorted(s["question_id"] for s in summaries)
    assert {p["answer"] for p in predictions} == {s["answer_text"] for s in summaries}
    assert main(["report", str(out)]) == 0  # no right answer to score, no answerable-view labels: n/a, not a crash
    assert "| 3 | n/a |" in (out / "report.md").read_text()


def test_openeqa_needs_its_folders_and_a_text_writing_backend(tmp_path, capsys):
    from eqa.cli import main

    folders = ["--dataset", "openeqa", "--scenes", str(tmp_path), "--frames", str(tmp_path), "--out",
               str(tmp_path / "b"), "--method", "semantic"]
    openai = ["vlm.backend=openai", "vlm.openai.model=m"]
    for args, needle in [(folders + ["stop.policy=relevance"], "use a VLM backend that writes text"),
                         (folders + openai + ["stop.policy=conformal"], "needs answer choices"),
                         (folders[:4] + folders[6:] + openai + ["stop.policy=relevance"], "needs --frames DIR"),
                         (folders + openai + ["stop.policy=relevance"], "no OpenEQA HM3D question has both")]:
        assert main(["bench"] + args) == 2
        assert needle in capsys.readouterr().err


@pytest.mark.integration
def test_eqa_run_answers_an_open_question_in_free_text(tiny, tmp_path, capsys):
    from eqa.cli import main

    out = tmp_path / "run"
    assert main(["run", "--scene", "3", "--question", "What is on the kitchen counter?", "--out", str(out),
                 "--no-rerun", "vlm.backend=hf", f"vlm.hf.model_path={tiny}", "open_answer.max_tokens=3",
                 "agent.default_budget=2", "agent.budget_factor=0.1"] + SMALL) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_policy"] == "relevance" and summary["choices"] == [] and summary["open_answer"]["n_images"]
    assert f"answer: {summary['answer_text']!r}" in capsys.readouterr().out
    assert main(["run", "--scene", "3", "--question", "What is on the kitchen counter?", "--out", str(out)]) == 2
    assert "writes text" in capsys.readouterr().err  # the default built-in VLM answers multiple-choice only
