"""Resource bounds found missing by the hostile probe (issue 27), kept fixed: the VLM server against silent
clients, huge images and nested JSON; the OpenAI-compatible client against trickling, huge or odd replies;
the scene map against sparse depth and pose jumps; configs against non-finite and absurd numbers."""
from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

from hostile import SMALL, completion, questions_file, scripted_server, send
from vlm.errors import VLMConnectionError, VLMResponseError
from vlm.scoring import NextToken, PromptRequest
from vlm.server import ServerConfig, VLMServer


class Echo:
    """A TokenScorer that needs no model: every candidate gets the same log-probability."""

    backend, model_id, probability_method = "echo", "echo-1", "logprobs"

    def score(self, requests, top_k=0):
        return [NextToken(np.zeros(len(r.candidates)), [("A", -0.1)], ("A", -0.1), 1, 1) for r in requests]


def _post(server: VLMServer, body: bytes) -> tuple[int, dict]:
    import http.client

    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _png_url(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 20, 30)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _chat(image_url: str) -> bytes:
    return json.dumps({"max_tokens": 1, "logprobs": True, "top_logprobs": 1, "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_url}},
                                     {"type": "text", "text": "Yes or No?"}]}]}).encode()


def test_the_server_drops_connections_that_send_nothing():
    with VLMServer(Echo(), ServerConfig(port=0, read_timeout_s=0.3)) as server:
        before = threading.active_count()
        silent = [socket.create_connection(server.address) for _ in range(20)]
        for s in silent:
            s.settimeout(5)
            assert s.recv(1) == b""  # the server closed it after read_timeout_s
            s.close()
        deadline = time.monotonic() + 5
        while threading.active_count() > before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() <= before
        assert _post(server, _chat(_png_url(8, 8)))[0] == 200  # and it keeps serving


def test_the_server_refuses_huge_images_before_decoding_them():
    config = ServerConfig(port=0, max_image_pixels=100 * 100, max_decode_pixels=100 * 100)
    with VLMServer(Echo(), config) as server:
        status, body = _post(server, _chat(_png_url(7000, 7000)))  # a 49 Mpx PNG of a few KB
        assert status == 400 and "7000x7000 px exceeds 10000 pixels" in body["error"]["message"]
        assert _post(server, _chat(_png_url(100, 100)))[0] == 200


def test_image_decodes_wait_for_the_pixel_and_count_budget():
    from vlm.server import BadRequest, _DecodeBudget

    budget = _DecodeBudget(max_pixels=150, max_decodes=2, timeout_s=0.2)
    url = _png_url(10, 10)
    with budget._cond:
        budget._in_flight, budget._decoding = 100, 1  # a decode of 100 px in flight: 100 more do not fit in 150
    with pytest.raises(BadRequest, match="busy decoding images"):
        budget.decode(url, 1000)
    with budget._cond:
        budget._in_flight, budget._decoding = 0, 2  # two decodes of tiny images in flight: no third one
    with pytest.raises(BadRequest, match="busy decoding images"):
        budget.decode(url, 1000)
    with budget._cond:
        budget._decoding = 1
    assert budget.decode(url, 1000).shape == (10, 10, 3) and (budget._in_flight, budget._decoding) == (0, 1)


def test_the_server_answers_deeply_nested_json_with_400(capfd):
    with VLMServer(Echo(), ServerConfig(port=0)) as server:
        status, body = _post(server, b"[" * 200_000 + b"]" * 200_000)
        assert status == 400 and "nested too deeply" in body["error"]["message"]
    assert "Traceback" not in capfd.readouterr().err


def test_a_client_gone_mid_request_is_one_line_in_the_log(capfd):
    with VLMServer(Echo(), ServerConfig(port=0, read_timeout_s=0.3)) as server:
        s = socket.create_connection(server.address)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{\"mess")  # then silence
        s.settimeout(5)
        assert s.recv(1) == b""
        s.close()
        time.sleep(0.1)
    err = capfd.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("serve-vlm: connection from")]
    assert len(lines) == 1 and "ended: Request timed out" in lines[0]


def _client(url: str, **kw):
    from vlm.backends.openai import OpenAIConfig, OpenAIScorer

    return OpenAIScorer(OpenAIConfig(**{"base_url": url, "model": "m", "api_key_env": None, "max_retries": 0, **kw}))


REQUEST = PromptRequest("Q?", candidates=("A", "B"))


def test_the_client_gives_up_on_a_trickling_server_at_its_deadline():
    stop = threading.Event()

    def trickle(handler):
        body = completion([("A", -0.1), ("B", -2.5)])
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for byte in body:  # one byte every 0.1 s: about 20 s for the whole reply
            if stop.is_set():
                return
            try:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(0.1)

    with scripted_server(trickle) as (url, _):
        t0 = time.monotonic()
        with pytest.raises(VLMConnectionError, match="no complete reply within 1.0 s"):
            _client(url, timeout_s=1.0).score([REQUEST])
        took = time.monotonic() - t0
        stop.set()
    assert took < 10  # not the reply's 20 s: the deadline holds (bound loose on purpose: a loaded machine)


def test_the_client_caps_the_size_of_a_reply():
    with scripted_server(lambda h: send(h, 200, b'{"pad": "' + b"x" * 3_000_000 + b'"}')) as (url, _):
        with pytest.raises(VLMResponseError, match="announced a reply of 3000011 bytes, over"):
            _client(url, max_response_bytes=1_000_000).score([REQUEST])


def test_the_client_honours_retry_after_within_its_bound(monkeypatch):
    import vlm.backends.openai as openai_backend

    replies = iter([(429, {"Retry-After": "3"}), (503, {"Retry-After": "120"}), (200, {})])
    waits = []
    monkeypatch.setattr(openai_backend.time, "sleep", waits.append)

    def respond(handler):
        status, headers = next(replies)
        send(handler, status, completion([("A", -0.1), ("B", -2.5)]) if status == 200 else b"{}", headers)

    with scripted_server(respond) as (url, seen):
        out = _client(url, max_retries=3, backoff_s=0.5, backoff_max_s=10.0).score([REQUEST])
    assert len(seen) == 3 and out[0].candidate_logprobs[0] == pytest.approx(-0.1)
    assert waits == [3.0, 10.0]  # the server's 3 s; its 120 s capped at backoff_max_s


@pytest.mark.parametrize("bad", [float("nan"), 0.7])
def test_the_client_rejects_log_probabilities_that_are_not(bad):
    body = completion([("A", -0.1), ("B", -2.5)]).replace(b"-2.5", b"NaN" if bad != bad else b"0.7")
    with scripted_server(lambda h: send(h, 200, body)) as (url, _):
        with pytest.raises(VLMResponseError, match="not a log-probability"):
            _client(url).score([REQUEST])


def test_a_vlm_server_down_is_one_line_for_cli_users(tmp_path, capsys):
    from eqa.cli import main

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    data = questions_file(tmp_path / "q.jsonl", n=1)
    code = main(["bench", "--dataset", str(data), "--out", str(tmp_path / "run"), "--method", "fbe-vlm"] + SMALL
                + ["vlm.backend=openai", "vlm.openai.model=m", f"vlm.openai.base_url=http://127.0.0.1:{port}/v1",
                   "vlm.openai.max_retries=0", "vlm.openai.api_key_env=null"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "Traceback" not in "\n".join(err)
    assert err[-1].startswith("eqa bench: error: VLM server") and "unavailable after 1 attempts" in err[-1]


def _frame_with_depth(rows):
    from sim.env import SimEnv, SimEpisode

    env = SimEnv.from_seed(3)
    frame = env.reset(SimEpisode(seed=0))
    depth = np.zeros_like(frame.depth)
    depth[rows] = frame.depth[rows]
    return frame, depth


@pytest.mark.parametrize("sparse", ["odd rows", "3x3 patch", "bottom row"])
def test_the_scene_map_takes_sparse_depth(sparse):
    from mapping.frame import Frame
    from mapping.scene_map import SceneMap

    rows = {"odd rows": np.s_[1::2], "3x3 patch": np.s_[-3:, -3:], "bottom row": np.s_[-1]}[sparse]
    frame, depth = _frame_with_depth(rows)
    m = SceneMap()
    m.integrate(Frame(frame.rgb, depth, frame.intrinsics, frame.T_world_cam, 0.0, T_world_base=frame.T_world_base))
    assert m.tsdf.num_blocks > 0 and m.explored.any() and len(m.robot_path) == 1


def test_the_scene_map_refuses_a_pose_jump_and_an_unbounded_extent():
    from mapping.config import MapConfig
    from mapping.frame import Frame, base_pose
    from mapping.scene_map import SceneMap

    frame, depth = _frame_with_depth(np.s_[:])

    def moved(x, y, stamp):
        T = base_pose(x, y, 0.0)
        return Frame(frame.rgb, depth, frame.intrinsics, T @ np.linalg.inv(frame.T_world_base) @ frame.T_world_cam,
                     stamp, T_world_base=T)

    m = SceneMap()
    m.integrate(moved(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match=r"pose jump of 3000\.0 m between frames"):
        m.integrate(moved(3000.0, 0.0, 1.0))
    assert len(m.robot_path) == 1 and m.spec.shape[0] * m.spec.shape[1] < 1e6  # nothing grew
    m = SceneMap(MapConfig(max_extent=30.0))
    for i in range(4):
        m.integrate(moved(10.0 * i, 0.0, float(i)))  # steps of 10 m: no jump, but the path stretches
    with pytest.raises(ValueError, match=r"would span 40\.0 m .* more than map.max_extent 30 m"):
        m.integrate(moved(40.0, 0.0, 4.0))


@pytest.mark.parametrize("override", ["sim.capture_spacing=0.001", "sim.capture_spacing=.nan",
                                      "agent.budget_factor=.inf",
                                      "agent.planner.stuck_min_progress=.nan", "sim.camera.width=100000",
                                      "agent.map.voxel_size=1e-6", "questions.start_clearance=.inf"])
def test_configs_refuse_non_finite_and_out_of_range_numbers(override):
    from eqa.sim_driver import load_sim_run

    key = override.split("=")[0].split(".")[-1]
    with pytest.raises(ValueError, match=key):
        load_sim_run("semantic", [override])


def test_every_numeric_config_field_is_checked():
    """NaN and inf are refused by every numeric field of every config (one check, mapping.bounds)."""
    import dataclasses
    import typing

    from eqa.method import AgentConfig, MethodConfig, SemanticConfig, StopConfig
    from eqa.sim_driver import SimRun
    from mapping.config import MapConfig
    from nav.config import ApproachConfig, FrontierScoreConfig, PlannerConfig
    from sim.config import CameraConfig, HouseConfig, RobotConfig, SimConfig
    from sim.questions import QuestionConfig
    from vlm.backends.clip import ClipConfig
    from vlm.backends.hf import HFConfig
    from vlm.backends.openai import OpenAIConfig
    from vlm.visual_prompt import VisualPromptConfig

    required = {OpenAIConfig: {"model": "m"}, HFConfig: {"model_path": "x"}, ClipConfig: {"weights": "w"}}
    checked = 0
    for cls in (AgentConfig, SemanticConfig, StopConfig, MethodConfig, SimRun, MapConfig, PlannerConfig,
                FrontierScoreConfig, ApproachConfig, CameraConfig, RobotConfig, HouseConfig, SimConfig, QuestionConfig,
                VisualPromptConfig, ServerConfig, OpenAIConfig, HFConfig, ClipConfig):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            args = typing.get_args(hints[f.name])
            if hints[f.name] in (int, float) or int in args or float in args:
                for bad in (float("nan"), float("inf")):
                    with pytest.raises(ValueError, match=f"{cls.__name__}.{f.name}"):
                        cls(**{**required.get(cls, {}), f.name: bad})
                checked += 1
    assert checked > 100


def test_serve_vlm_takes_its_limits_from_config_overrides_and_flags(tmp_path):
    import argparse

    from eqa.commands import serve_vlm

    parser = argparse.ArgumentParser()
    serve_vlm.register(parser.add_subparsers())
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("vlm:\n  backend: builtin\nserver:\n  max_image_pixels: 10000\n  read_timeout_s: 5\n  port: 9\n")
    args = parser.parse_args(["serve-vlm", "--config", str(cfg), "--port", "0", "server.read_timeout_s=0.5",
                              "server.max_decodes=2"])
    with serve_vlm.build_server(args) as server:
        assert (server.config.max_image_pixels, server.config.read_timeout_s) == (10000, 0.5)
        assert (server.config.max_decodes, server.config.port) == (2, 0)
        status, body = _post(server, _chat(_png_url(101, 100)))
        assert status == 400 and "exceeds 10000 pixels" in body["error"]["message"]
    bad = parser.parse_args(["serve-vlm", "--backend", "builtin", "--port", "0", "server.read_timeout_s=.nan"])
    with pytest.raises(ValueError, match="ServerConfig.read_timeout_s must be finite"):
        serve_vlm.build_server(bad)
