"""`eqa serve-vlm` server on loopback with the openai client: equality with the direct backend,
malformed requests, a server stopped mid-run, servers without log-probabilities, API keys."""
from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from vlm_fixtures import build_tiny_hf_model, random_image  # noqa: E402

from vlm.backends.hf import HFConfig, HFScorer  # noqa: E402
from vlm.backends.openai import OpenAIConfig, OpenAIScorer  # noqa: E402
from vlm.errors import VLMConnectionError, VLMResponseError  # noqa: E402
from vlm.imaging import to_data_url  # noqa: E402
from vlm.prompted import PromptedVLM  # noqa: E402
from vlm.scoring import PromptRequest  # noqa: E402
from vlm.server import ServerConfig, VLMServer  # noqa: E402
from vlm.queries import Query  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
Q = "Is the stove in the kitchen on?"
CHOICES = ["on", "off", "no stove"]
POINTS = [(6, 8), (40, 30)]


@pytest.fixture(scope="module")
def hf_scorer(tmp_path_factory):
    path = build_tiny_hf_model(tmp_path_factory.mktemp("qwen"), "qwen2_vl", seed=1)
    return HFScorer(HFConfig(model_path=str(path), model_id="tiny-qwen"))


@pytest.fixture(scope="module")
def server(hf_scorer):
    vocab = len(hf_scorer.tokenizer)
    srv = VLMServer(hf_scorer, ServerConfig(host="127.0.0.1", port=0, model_name="tiny", max_top_logprobs=vocab,
                                            request_timeout_s=60)).start()
    yield srv
    srv.stop()


def client(srv, **kw) -> OpenAIScorer:
    cfg = dict(base_url=srv.base_url, model="tiny", api_key_env=None, timeout_s=10, max_retries=1, backoff_s=0.05,
               backoff_max_s=0.1, top_logprobs=srv.config.max_top_logprobs)
    cfg.update(kw)
    return OpenAIScorer(OpenAIConfig(**cfg))


def raw(srv, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    host, port = srv.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def chat_body(**extra):
    img = to_data_url(random_image(0))
    body = {"model": "tiny", "max_tokens": 1, "logprobs": True, "top_logprobs": 3, "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": img}},
                                     {"type": "text", "text": "Answer Yes or No."}]}]}
    body.update(extra)
    return body


def test_openai_client_through_server_equals_direct_backend(server, hf_scorer):
    direct = PromptedVLM(hf_scorer)
    remote = PromptedVLM(client(server))
    img = random_image(7)
    a = direct.query_view(img, Q, CHOICES, POINTS)
    b = remote.query_view(img, Q, CHOICES, POINTS)
    np.testing.assert_allclose(b.answer, a.answer, atol=1e-5)
    np.testing.assert_allclose(b.direction, a.direction, atol=1e-5)
    assert b.relevance == pytest.approx(a.relevance, abs=1e-5)
    assert b.worth_exploring == pytest.approx(a.worth_exploring, abs=1e-5)
    assert all(o.method == "logprobs" and not o.notes for o in b.outputs.values())
    assert b.call.tokens_in == a.call.tokens_in  # usage.prompt_tokens is reported
    assert remote.info.backend == "openai" and "tiny" in remote.info.model_id


def test_models_endpoint_and_response_shape(server):
    status, body = raw(server, "GET", "/v1/models")
    assert status == 200 and body["data"][0]["id"] == "tiny"
    status, body = raw(server, "POST", "/v1/chat/completions", json.dumps(chat_body()).encode(),
                       {"Content-Type": "application/json"})
    assert status == 200
    entry = body["choices"][0]["logprobs"]["content"][0]
    assert len(entry["top_logprobs"]) == 3
    assert entry["token"] == entry["top_logprobs"][0]["token"] == body["choices"][0]["message"]["content"]
    lps = [t["logprob"] for t in entry["top_logprobs"]]
    assert lps == sorted(lps, reverse=True) and all(lp <= 0 for lp in lps)
    assert body["usage"]["prompt_tokens"] > 0 and body["object"] == "chat.completion"


@pytest.mark.parametrize("body,status,needle", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (json.dumps({"model": "tiny"}).encode(), 400, "messages"),
    (json.dumps(chat_body(model="other")).encode(), 404, "not found"),
    (json.dumps(chat_body(max_tokens=50)).encode(), 400, "max_tokens"),
    (json.dumps(chat_body(top_logprobs=10 ** 6)).encode(), 400, "top_logprobs"),
    (json.dumps(chat_body(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://example.com/x.png"}},
        {"type": "text", "text": "hi"}]}])).encode(), 400, "fetches nothing"),
    (json.dumps(chat_body(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "hi"}]}])).encode(), 400, "does not decode"),
    (json.dumps(chat_body(messages=[{"role": "assistant", "content": "x"}])).encode(), 400, "user"),
])
def test_malformed_requests_get_4xx_and_server_keeps_serving(server, body, status, needle):
    got, answer = raw(server, "POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    assert got == status and needle in answer["error"]["message"]
    assert raw(server, "GET", "/nothing")[0] == 404
    assert raw(server, "DELETE", "/v1/chat/completions")[0] == 405
    ok, _ = raw(server, "POST", "/v1/chat/completions", json.dumps(chat_body()).encode(),
                {"Content-Type": "application/json"})
    assert ok == 200


def test_server_stopped_mid_run_gives_clear_error(hf_scorer):
    srv = VLMServer(hf_scorer, ServerConfig(port=0, model_name="tiny")).start()
    remote = PromptedVLM(client(srv, top_logprobs=20))
    img = random_image(8)
    assert 0 <= remote.relevance(img, Q) <= 1
    srv.stop()
    with pytest.raises(VLMConnectionError, match=r"unavailable after 2 attempts"):
        remote.relevance(random_image(9), Q)


@pytest.mark.integration
def test_serve_vlm_process_killed_mid_run(hf_scorer, tmp_path):
    """The real `eqa serve-vlm` command in its own process, killed while a robot loop is querying it."""
    code = ("import argparse, sys; from eqa.commands import serve_vlm; p = argparse.ArgumentParser(); "
            "serve_vlm.register(p.add_subparsers()); a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))")
    proc = subprocess.Popen([sys.executable, "-c", code, "serve-vlm", "--backend", "hf", "--model-path",
                             hf_scorer.config.model_path, "--port", "0", "--model-name", "tiny"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for _ in range(200):  # bounded: the banner comes once the socket is bound
            line = proc.stderr.readline()
            match = re.search(r"at (http://\S+/v1)", line)
            if match:
                url = match.group(1)
                break
            if not line and proc.poll() is not None:
                break
        assert url, "serve-vlm did not start"
        remote = PromptedVLM(OpenAIScorer(OpenAIConfig(base_url=url, model="tiny", api_key_env=None, timeout_s=10,
                                                       max_retries=2, backoff_s=0.05, backoff_max_s=0.1)))
        results, errors = [], []

        def robot_loop():
            for step in range(200):  # bounded loop of views
                try:
                    results.append(remote.query_view(random_image(step), Q, CHOICES, POINTS))
                except VLMConnectionError as err:
                    errors.append(err)
                    return

        loop = threading.Thread(target=robot_loop)
        loop.start()
        for _ in range(3000):  # up to 30 s on a loaded machine
            if len(results) >= 2 or errors:
                break
            time.sleep(0.01)
        proc.kill()
        loop.join(timeout=30)
        assert not loop.is_alive()
        assert len(results) >= 2 and all(r.answer.sum() == pytest.approx(1.0) for r in results)
        assert len(errors) == 1 and "unavailable after 3 attempts" in str(errors[0])
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stderr.close()


def test_client_rejects_4xx_without_retry(server):
    remote = client(server, model="wrong-model", max_retries=3, backoff_s=5.0, backoff_max_s=5.0)
    with pytest.raises(VLMResponseError, match="HTTP 404.*not found"):
        PromptedVLM(remote).relevance(random_image(1), Q)  # would take 15 s if it retried


class _ScriptedHandler(BaseHTTPRequestHandler):
    """An OpenAI-compatible stand-in that answers without log-probabilities, or fails a set number of times."""

    def log_message(self, *a):
        pass

    def do_POST(self):  # noqa: N802
        state = self.server.state
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        state["requests"].append({"auth": self.headers.get("Authorization"), "body": body})
        if state["fail_first"] > 0:
            state["fail_first"] -= 1
            data = b'{"error": {"message": "overloaded"}}'
            self.send_response(503)
        else:
            reply = state["replies"][len(state["requests"]) % len(state["replies"])]
            data = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                                            "logprobs": None}], "usage": {"prompt_tokens": 7}}).encode()
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def scripted():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ScriptedHandler)
    httpd.state = {"requests": [], "fail_first": 0, "replies": ["Yes"]}
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def scripted_client(httpd, **kw):
    cfg = dict(base_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1", model="m", api_key_env=None,
               timeout_s=5, max_retries=2, backoff_s=0.01, backoff_max_s=0.02, max_concurrency=1)
    cfg.update(kw)
    return OpenAIScorer(OpenAIConfig(**cfg))


def test_server_without_logprobs_is_a_clear_error_or_declared_sampling(scripted):
    with pytest.raises(VLMResponseError, match="without log-probabilities"):
        PromptedVLM(scripted_client(scripted)).relevance(random_image(0), Q)
    scripted.state["replies"] = ["Yes", "No", "yes.", "Yes"]
    vlm = PromptedVLM(scripted_client(scripted, logprobs_mode="sample", sample_k=8))
    assert vlm.info.probability_method == "sampled(k=8)" and vlm.info.fallback
    out, _ = vlm.run(random_image(0), [Query("relevance", Q)])
    assert out[0].method == "sampled(k=8)"
    assert out[0].probs[0] == pytest.approx(6 / 8)  # 'Yes', 'yes.' count as Yes (case-insensitive)


def test_retries_with_backoff_then_succeed_and_api_key_from_env(scripted, monkeypatch):
    monkeypatch.setenv("EQA_TEST_KEY", "sk-secret-123")
    scripted.state["fail_first"] = 2
    scripted.state["replies"] = ["A"]
    sc = scripted_client(scripted, logprobs_mode="sample", sample_k=1, api_key_env="EQA_TEST_KEY")
    p = PromptedVLM(sc).answer(random_image(0), Q, ["x", "y"])
    np.testing.assert_allclose(p, [1.0, 0.0])
    assert len(scripted.state["requests"]) == 3
    assert all(r["auth"] == "Bearer sk-secret-123" for r in scripted.state["requests"])
    assert "sk-secret" not in repr(sc) and "sk-secret" not in repr(sc.config)
    scripted.state["fail_first"] = 10
    with pytest.raises(VLMConnectionError) as err:
        sc.score([PromptRequest("hi", candidates=("A", "B"))])
    assert "503" in str(err.value) and "sk-secret" not in str(err.value)


def test_server_requires_key_when_configured(hf_scorer, monkeypatch):
    monkeypatch.setenv("EQA_SERVE_KEY", "k-1")
    srv = VLMServer(hf_scorer, ServerConfig(port=0, model_name="tiny", api_key_env="EQA_SERVE_KEY")).start()
    try:
        assert raw(srv, "GET", "/v1/models")[0] == 401
        assert raw(srv, "GET", "/v1/models", headers={"Authorization": "Bearer k-1"})[0] == 200
        monkeypatch.setenv("CLIENT_KEY", "k-1")
        assert 0 <= PromptedVLM(client(srv, api_key_env="CLIENT_KEY", top_logprobs=20)).relevance(
            random_image(0), Q) <= 1
    finally:
        srv.stop()
    monkeypatch.delenv("EQA_SERVE_KEY")
    with pytest.raises(ValueError, match="EQA_SERVE_KEY"):
        VLMServer(hf_scorer, ServerConfig(port=0, api_key_env="EQA_SERVE_KEY"))


def test_concurrent_requests_are_micro_batched(hf_scorer):
    calls = []

    class Recording:
        backend, model_id, probability_method = "rec", "rec", "logprobs"

        def score(self, requests, top_k=0):
            calls.append(len(requests))
            return hf_scorer.score(requests, top_k)

    srv = VLMServer(Recording(), ServerConfig(port=0, model_name="tiny", batch_window_s=0.5)).start()
    try:
        view = PromptedVLM(client(srv, top_logprobs=20, max_concurrency=4)).query_view(
            random_image(3), Q, CHOICES, POINTS)
    finally:
        srv.stop()
    assert view.answer.sum() == pytest.approx(1.0)
    assert sum(calls) == 4 and len(calls) < 4  # the view's four requests shared scorer calls


def test_serve_vlm_command_builds_a_working_server(hf_scorer, tmp_path):
    from eqa.commands import serve_vlm

    parser = argparse.ArgumentParser()
    serve_vlm.register(parser.add_subparsers())
    path = hf_scorer.config.model_path
    cfg = tmp_path / "vlm.yaml"
    cfg.write_text("vlm:\n  backend: hf\n  hf:\n    max_batch_size: 2\n")
    args = parser.parse_args(["serve-vlm", "--config", str(cfg), "--model-path", path, "--port", "0",
                              "--model-name", "cli-model", "hf.dtype=float32"])
    assert args.func is serve_vlm.run
    srv = serve_vlm.build_server(args).start()
    try:
        assert srv.scorer.config.max_batch_size == 2
        assert raw(srv, "GET", "/v1/models")[1]["data"][0]["id"] == "cli-model"
    finally:
        srv.stop()
    bad = parser.parse_args(["serve-vlm", "--backend", "builtin", "--port", "0",
                             f"builtin.weights={tmp_path / 'missing' / 'builtin_vlm.pt'}"])
    with pytest.raises(FileNotFoundError, match="builtin_vlm.pt"):
        serve_vlm.build_server(bad)
    remote = parser.parse_args(["serve-vlm", "--backend", "openai", "--port", "0", "openai.model=m"])
    with pytest.raises(ValueError, match="not 'openai'"):  # a remote client is not served
        serve_vlm.build_server(remote)


def test_candidates_missing_from_top_logprobs_are_floored_and_flagged(server):
    remote = PromptedVLM(client(server, top_logprobs=1))
    out, _ = remote.run(random_image(4), [Query("answer", Q, tuple(CHOICES))])
    p = out[0].probs
    assert p.sum() == pytest.approx(1.0)
    missing = [int(n.split(":")[1]) for n in out[0].notes if n.startswith("missing:")]
    assert len(missing) >= 2  # with one returned token, at least two of three letters are missing
    assert all(p[i] == pytest.approx(p[missing[0]]) for i in missing)  # all get the same floor
    assert all(p[i] >= p[j] - 1e-12 for i in range(3) if i not in missing for j in missing)


def test_a_failing_request_does_not_fail_its_batch(hf_scorer):
    class Picky:
        backend, model_id, probability_method = "picky", "picky", "logprobs"

        def score(self, requests, top_k=0):
            if any("poison" in r.text for r in requests):
                raise ValueError("poisoned prompt")
            return hf_scorer.score(requests, top_k)

    srv = VLMServer(Picky(), ServerConfig(port=0, model_name="tiny", batch_window_s=0.3)).start()
    try:
        out = {}

        def send(name, text):
            body = chat_body(messages=[{"role": "user", "content": text}])
            out[name] = raw(srv, "POST", "/v1/chat/completions", json.dumps(body).encode(),
                            {"Content-Type": "application/json"})

        threads = [threading.Thread(target=send, args=(n, t)) for n, t in (("good", "Answer Yes or No."),
                                                                             ("bad", "poison"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        srv.stop()
    assert out["good"][0] == 200 and out["good"][1]["choices"][0]["logprobs"]["content"]
    assert out["bad"][0] == 400 and "poisoned" in out["bad"][1]["error"]["message"]


def test_eqa_cli_lists_serve_vlm():
    from eqa.cli import build_parser
    from eqa.commands import serve_vlm

    args = build_parser().parse_args(["serve-vlm", "--port", "0", "--backend", "hf", "--model-path", "/x"])
    assert args.func is serve_vlm.run and args.port == 0
