"""The project's OpenAI-compatible VLM server: exposes any local TokenScorer (hf, builtin) with
log-probabilities over HTTP so one GPU box can serve many robots.

Endpoints: POST /v1/chat/completions (one next token, with logprobs / top_logprobs; or, with max_tokens > 1
and a scorer that writes text (hf), a greedy reply of up to max_new_tokens tokens to up to max_images images),
GET /v1/models, GET /health. Concurrent requests are micro-batched into one scorer call (up to max_batch_size, waiting
at most batch_window_s seconds). Bad requests get a 4xx JSON error and the server keeps serving.
Images must be data URLs: the server fetches nothing. Resources are bounded: a connection that sends
nothing for read_timeout_s is closed, images above max_image_pixels are refused and at most
max_decode_pixels are being decoded at once (others wait, then get a 503), and a connection that ends
badly (a client gone mid-reply) is logged in one line.
"""
from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Callable, Optional

import numpy as np

from mapping.bounds import Positive, PositiveInt, Range, check_bounds
from vlm.imaging import decode_image, from_data_url, open_data_url
from vlm.scoring import GeneratedText, NextToken, PromptRequest, TextRequest, TokenScorer


@dataclass(frozen=True)
class ServerConfig:
    """host/port to bind (port 0: any free port); model_name: served id (default: the scorer's model_id);
    max_top_logprobs: largest top_logprobs accepted; api_key_env: NAME of an env var holding the key
    clients must send as a Bearer token (None: no auth); max_body_bytes: request size limit;
    read_timeout_s: a connection is closed when it sends nothing for this long; max_image_pixels: the largest
    image accepted; max_decode_pixels and max_decodes: pixels and number of the images being decoded at once
    (requests beyond wait up to request_timeout_s, then get a 503); max_new_tokens and max_images: the
    largest max_tokens and number of images of a text reply (scorers that write text)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Range(ge=0, le=65535)] = 8000
    model_name: Optional[str] = None
    max_top_logprobs: Annotated[int, Range(ge=1, le=1_000_000)] = 20
    max_batch_size: Annotated[int, Range(ge=1, le=256)] = 8
    batch_window_s: Annotated[float, Range(ge=0, le=1)] = 0.005
    max_body_bytes: Annotated[int, Range(ge=1024)] = 32 * 1024 * 1024
    request_timeout_s: Positive = 300.0
    api_key_env: Optional[str] = None
    read_timeout_s: Positive = 30.0
    max_image_pixels: PositiveInt = 4096 * 4096
    max_decode_pixels: PositiveInt = 3 * 4096 * 4096
    max_decodes: Annotated[int, Range(ge=1, le=256)] = 4
    max_new_tokens: Annotated[int, Range(ge=1, le=4096)] = 128
    max_images: Annotated[int, Range(ge=1, le=64)] = 8

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.max_image_pixels > self.max_decode_pixels:
            raise ValueError("server max_image_pixels must be <= max_decode_pixels")


class BadRequest(ValueError):
    """A client error: HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ChatRequest:
    """A parsed chat request: a next-token request (`prompt`, with logprobs wanted and top_logprobs) or, when
    max_tokens > 1, a text reply (`text`)."""

    prompt: Optional[PromptRequest] = None
    text: Optional[TextRequest] = None
    want_logprobs: bool = False
    top_k: int = 0


def _max_tokens(body: dict, limit: int) -> int:
    value = 1
    for key in ("max_tokens", "max_completion_tokens"):
        v = body.get(key)
        if v is None:
            continue
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= limit:
            raise BadRequest(400, f"{key} must be an integer in 1..{limit}")
        value = v
    return value


def parse_chat_request(body: object, served: str, max_top_logprobs: int,
                       decode: Callable[[str], np.ndarray] = from_data_url, max_new_tokens: int = 1,
                       max_images: int = 1) -> ChatRequest:
    """The request in an OpenAI chat-completions body; BadRequest if invalid. decode(url): the image of a data
    URL (ValueError for a bad one). max_new_tokens: the largest max_tokens (1: next-token scoring only);
    max_images: the most images of a text reply (a next-token request has at most one)."""
    if not isinstance(body, dict):
        raise BadRequest(400, "request body must be a JSON object")
    model = body.get("model")
    if model is not None and model != served:
        raise BadRequest(404, f"model {model!r} not found; this server serves {served!r}")
    if max_new_tokens == 1:
        for key in ("max_tokens", "max_completion_tokens"):
            if body.get(key) not in (None, 1):
                raise BadRequest(400, f"{key} must be 1: this server returns next-token log-probabilities only")
    n_tokens = _max_tokens(body, max_new_tokens)
    if body.get("n") not in (None, 1):
        raise BadRequest(400, "n must be 1")
    if body.get("stream"):
        raise BadRequest(400, "stream is not supported")
    want = body.get("logprobs", False)
    if not isinstance(want, bool):
        raise BadRequest(400, "logprobs must be a boolean")
    top_k = body.get("top_logprobs", 0) or 0
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 0 <= top_k <= max_top_logprobs:
        raise BadRequest(400, f"top_logprobs must be an integer in 0..{max_top_logprobs}")
    if top_k and not want:
        raise BadRequest(400, "top_logprobs needs logprobs: true")
    if n_tokens > 1 and want:
        raise BadRequest(400, "logprobs are served for one token only (max_tokens 1)")
    temperature = body.get("temperature", 0) or 0
    if n_tokens > 1 and (not isinstance(temperature, (int, float)) or isinstance(temperature, bool)
                         or temperature != 0):
        raise BadRequest(400, "text replies are greedy: temperature must be 0")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(400, "messages must be a non-empty list")
    system, texts, images = [], [], []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user"):
            raise BadRequest(400, "only system and user messages are supported (one user turn)")
        parts = m.get("content")
        if isinstance(parts, str):
            parts = [{"type": "text", "text": parts}]
        if not isinstance(parts, list):
            raise BadRequest(400, "message content must be a string or a list of parts")
        for part in parts:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                (system if m["role"] == "system" else texts).append(part["text"])
            elif kind == "image_url" and m["role"] == "user":
                if len(images) >= (max_images if n_tokens > 1 else 1):
                    raise BadRequest(400, f"at most {max_images if n_tokens > 1 else 1} image(s) per request")
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                try:
                    images.append(decode(url))
                except ValueError as err:
                    raise BadRequest(400, f"image_url: {err}") from None
            else:
                raise BadRequest(400, f"unsupported content part {str(part)[:80]!r}")
    if sum(1 for m in messages if m.get("role") == "user") != 1:
        raise BadRequest(400, "exactly one user message is required")
    if not texts:
        raise BadRequest(400, "the user message needs text")
    if n_tokens > 1:
        if system:
            raise BadRequest(400, "system messages are not supported for text replies (max_tokens > 1)")
        return ChatRequest(text=TextRequest("\n".join(texts), tuple(images), n_tokens))
    req = PromptRequest(text="\n".join(texts), image=images[0] if images else None,
                        system="\n".join(system) or None)
    return ChatRequest(prompt=req, want_logprobs=want, top_k=top_k)


def text_body(result: GeneratedText, served: str, max_tokens: int) -> dict:
    """OpenAI chat.completion JSON for a text reply."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
        "model": served,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text}, "logprobs": None,
                     "finish_reason": "length" if result.tokens_out >= max_tokens else "stop"}],
        "usage": {"prompt_tokens": result.tokens_in, "completion_tokens": result.tokens_out,
                  "total_tokens": result.tokens_in + result.tokens_out},
    }


def completion_body(result: NextToken, served: str, want_logprobs: bool, top_k: int) -> dict:
    """OpenAI chat.completion JSON for one next token."""
    token, lp = result.greedy if result.greedy else ("", 0.0)
    logprobs = None
    if want_logprobs:
        entry = lambda t, v: {"token": t, "logprob": v, "bytes": list(t.encode("utf-8"))}  # noqa: E731
        logprobs = {"content": [{**entry(token, lp), "top_logprobs": [entry(t, v) for t, v in result.top[:top_k]]}]}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
        "model": served,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": token},
                     "logprobs": logprobs, "finish_reason": "length"}],
        "usage": {"prompt_tokens": result.tokens_in, "completion_tokens": 1, "total_tokens": result.tokens_in + 1},
    }


class _DecodeBudget:
    """Bounds the images being decoded at once (at most max_decodes images of max_pixels pixels in all): an image
    waits (up to timeout_s) until it fits."""

    def __init__(self, max_pixels: int, max_decodes: int, timeout_s: float) -> None:
        self.max_pixels, self.max_decodes, self.timeout_s = max_pixels, max_decodes, timeout_s
        self._in_flight = 0
        self._decoding = 0
        self._cond = threading.Condition()

    def decode(self, url: str, max_image_pixels: int) -> np.ndarray:
        """The RGB pixels of a data URL, decoded within the budget; ValueError for a bad or too large image,
        BadRequest(503) when the budget stays full."""
        img = open_data_url(url)
        pixels = img.width * img.height
        if pixels > max_image_pixels:
            img.close()
            raise ValueError(f"image of {img.width}x{img.height} px exceeds {max_image_pixels} pixels")
        with self._cond:
            if not self._cond.wait_for(lambda: self._in_flight + pixels <= self.max_pixels
                                       and self._decoding < self.max_decodes, self.timeout_s):
                img.close()
                raise BadRequest(503, "the server is busy decoding images; retry later")
            self._in_flight += pixels
            self._decoding += 1
        try:
            return decode_image(img, max_image_pixels)
        finally:
            with self._cond:
                self._in_flight -= pixels
                self._decoding -= 1
                self._cond.notify_all()


class _HTTPServer(ThreadingHTTPServer):
    """A connection that ends with an error (a client gone mid-reply, a read timeout) is one line on stderr."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        err = sys.exc_info()[1]
        print(f"serve-vlm: connection from {client_address[0]}:{client_address[1]} ended: "
              f"{type(err).__name__}: {err}", file=sys.stderr, flush=True)


class _Batcher:
    """Collects concurrent requests and scores them in one scorer call on a single worker thread."""

    def __init__(self, scorer: TokenScorer, max_batch: int, window_s: float) -> None:
        self.scorer, self.max_batch, self.window_s = scorer, max_batch, window_s
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vlm-batcher", daemon=True)
        self._thread.start()

    def submit(self, req: PromptRequest | TextRequest, top_k: int = 0) -> Future:
        """A next-token request (scored with others in one batch) or a text request (generated alone)."""
        fut: Future = Future()
        self._queue.put((req, top_k, fut))
        return fut

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                batch = [self._queue.get(timeout=0.1)]
            except queue.Empty:
                continue
            deadline = time.monotonic() + self.window_s
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=max(remaining, 0)) if remaining > 0
                                 else self._queue.get_nowait())
                except queue.Empty:
                    break
            for req, _, fut in [b for b in batch if isinstance(b[0], TextRequest)]:
                try:
                    fut.set_result(self.scorer.generate(req))
                except Exception as err:  # noqa: BLE001 - reported to its own client
                    fut.set_exception(err)
            batch = [b for b in batch if not isinstance(b[0], TextRequest)]
            if not batch:
                continue
            try:
                results = self.scorer.score([b[0] for b in batch], top_k=max(b[1] for b in batch))
                for (_, _, fut), res in zip(batch, results):
                    fut.set_result(res)
            except Exception as err:  # noqa: BLE001 - one bad request must not fail the others
                if len(batch) == 1:
                    batch[0][2].set_exception(err)
                    continue
                for req, top_k, fut in batch:
                    try:
                        fut.set_result(self.scorer.score([req], top_k=top_k)[0])
                    except Exception as single_err:  # noqa: BLE001 - reported to its own client
                        fut.set_exception(single_err)

    def stop(self) -> None:
        """Stop the worker; requests still queued fail with RuntimeError (their clients get a 5xx)."""
        self._stop.set()
        self._thread.join(timeout=5)
        while True:
            try:
                _, _, fut = self._queue.get_nowait()
            except queue.Empty:
                break
            fut.set_exception(RuntimeError("server is stopping"))


class VLMServer:
    """ThreadingHTTPServer serving a TokenScorer. Use start()/stop() (background thread) or serve_forever()."""

    def __init__(self, scorer: TokenScorer, config: ServerConfig = ServerConfig()) -> None:
        self.scorer = scorer
        self.config = config
        self.model_name = config.model_name or scorer.model_id
        self._api_key = os.environ.get(config.api_key_env) if config.api_key_env else None
        if config.api_key_env and not self._api_key:
            raise ValueError(f"server api_key_env names {config.api_key_env!r}, which is not set")
        self._batcher = _Batcher(scorer, config.max_batch_size, config.batch_window_s)
        self._decodes = _DecodeBudget(config.max_decode_pixels, config.max_decodes, config.request_timeout_s)
        self._httpd = _HTTPServer((config.host, config.port), self._handler_class())
        self._thread: Optional[threading.Thread] = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def base_url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/v1"

    def start(self) -> "VLMServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="vlm-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self._httpd.serve_forever()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop accepting requests, close the socket and the batcher (idempotent)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()
        self._batcher.stop()

    def __enter__(self) -> "VLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "confident-eqa-vlm/1"
            timeout = server.config.read_timeout_s  # per connection: a silent client is dropped

            def log_message(self, fmt, *args):  # quiet: no per-request logging (and never headers)
                pass

            def log_error(self, fmt, *args):  # a read timeout, a malformed request line: one line
                host, port = self.client_address[:2]
                print(f"serve-vlm: connection from {host}:{port} ended: {fmt % args}", file=sys.stderr, flush=True)

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str) -> None:
                kind = "invalid_request_error" if status < 500 else "server_error"
                self._send(status, {"error": {"message": message, "type": kind, "code": status}})

            def _authorised(self) -> bool:
                if server._api_key is None:
                    return True
                if self.headers.get("Authorization", "") == f"Bearer {server._api_key}":
                    return True
                self._error(401, "missing or wrong API key")
                return False

            def do_GET(self):  # noqa: N802
                path = self.path.split("?")[0].rstrip("/")
                if path == "/health":
                    return self._send(200, {"status": "ok"})
                if not self._authorised():
                    return None
                if path == "/v1/models":
                    return self._send(200, {"object": "list", "data": [
                        {"id": server.model_name, "object": "model", "created": 0, "owned_by": "confident-eqa"}]})
                if path == "/v1/chat/completions":
                    return self._error(405, "use POST for /v1/chat/completions")
                return self._error(404, f"no endpoint {path!r}")

            def do_POST(self):  # noqa: N802
                path = self.path.split("?")[0].rstrip("/")
                if path != "/v1/chat/completions":
                    self.close_connection = True
                    return self._error(404 if path != "/v1/models" else 405, f"no POST endpoint {path!r}")
                if not self._authorised():
                    self.close_connection = True
                    return None
                length = self.headers.get("Content-Length")
                if length is None or not length.isdigit():
                    self.close_connection = True
                    return self._error(411, "Content-Length required")
                if int(length) > server.config.max_body_bytes:
                    self.close_connection = True
                    return self._error(413, f"request larger than {server.config.max_body_bytes} bytes")
                raw = self.rfile.read(int(length))
                try:
                    body = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    return self._error(400, "request body is not valid JSON")
                except RecursionError:
                    return self._error(400, "request JSON is nested too deeply")
                config = server.config
                writes = callable(getattr(server.scorer, "generate", None))
                try:
                    chat = parse_chat_request(
                        body, server.model_name, config.max_top_logprobs,
                        lambda url: server._decodes.decode(url, config.max_image_pixels),
                        config.max_new_tokens if writes else 1, config.max_images)
                except BadRequest as err:
                    return self._error(err.status, str(err))
                fut = server._batcher.submit(chat.text or chat.prompt, chat.top_k)
                try:
                    result = fut.result(timeout=server.config.request_timeout_s)
                except ValueError as err:
                    return self._error(400, str(err))
                except Exception as err:  # noqa: BLE001 - the server keeps serving
                    return self._error(500, f"{type(err).__name__}: {err}")
                if chat.text is not None:
                    return self._send(200, text_body(result, server.model_name, chat.text.max_tokens))
                return self._send(200, completion_body(result, server.model_name, chat.want_logprobs, chat.top_k))

            def _not_allowed(self):
                self.close_connection = True
                self._error(405, f"method {self.command} not allowed")

            do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815

        return Handler
