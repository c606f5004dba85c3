"""Helpers of the hostile-input tests: a scripted HTTP server on loopback, small datasets, CLI runs."""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

from sim.questions import QuestionConfig, generate_questions, save_jsonl

SMALL = ["sim.camera.width=160", "sim.camera.height=120", "agent.default_budget=2", "agent.budget_factor=0.1"]


@contextmanager
def scripted_server(respond: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[tuple[str, list]]:
    """A loopback HTTP server calling respond(handler) for every POST and GET; yields (base url, requests seen),
    each request as {"method", "path", "headers"}."""
    seen: list = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            seen.append({"method": "POST", "path": self.path, "headers": dict(self.headers)})
            respond(self)

        def do_GET(self):  # noqa: N802 - what a client following a redirect would send
            seen.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
            respond(self)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict | None = None) -> None:
    handler.send_response(status)
    for k, v in {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})}.items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(body)


def completion(top: list[tuple[str, float]]) -> bytes:
    """A chat completion with these top log-probabilities."""
    entries = [{"token": t, "logprob": lp} for t, lp in top]
    return json.dumps({"choices": [{"message": {"content": top[0][0]}, "logprobs": {"content": [
        {**entries[0], "top_logprobs": entries}]}}], "usage": {"prompt_tokens": 3}}).encode()


def questions_file(path, n: int = 2, seed: int = 7, edit: Callable[[list[dict]], None] | None = None):
    """A small procedural dataset (4-room houses) at `path`; edit(records) may change the records first."""
    qs = generate_questions("test", n, seed, QuestionConfig(n_rooms=4, questions_per_house=2))
    save_jsonl(qs, path)
    if edit is not None:
        records = [json.loads(line) for line in path.read_text().splitlines()]
        edit(records)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
