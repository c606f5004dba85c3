"""OpenAI-compatible chat-completions client (vLLM, SGLang, Ollama, llama.cpp, hosted APIs, eqa serve-vlm).

Images travel as PNG data URLs; probabilities come from `logprobs` / `top_logprobs` of the first
generated token; open questions read the reply's text (greedy, temperature 0). The API key is read from
the environment variable whose NAME is configured and is only ever placed in the Authorization header (never
in messages, records or reprs). Standard library HTTP only. Declared fallback (logprobs_mode='sample'): sample_k
replies per query, label frequencies.
"""
from __future__ import annotations

import email.utils
import http.client
import json
import math
import os
import socket
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Optional, Sequence

import numpy as np

from mapping.bounds import Range, check_bounds
from vlm.errors import VLMConnectionError, VLMResponseError
from vlm.imaging import image_hash, to_data_url
from vlm.probs import candidate_logprobs, fill_missing, sampled_logprobs
from vlm.prompted import PromptedVLM
from vlm.registry import Backend
from vlm.scoring import GeneratedText, NextToken, PromptRequest, TextRequest

_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass
class OpenAIConfig:
    """OpenAI-compatible chat-completions client (`vlm.openai`).

    base_url: up to and including /v1. api_key_env: NAME of the environment variable holding the key
    (None: no key sent). timeout_s: total deadline of one request attempt (connect, send, headers and body),
    however slowly the server trickles bytes. Retries (connection errors, timeouts, 408, 429, 5xx): max_retries
    with exponential backoff from backoff_s up to backoff_max_s seconds; a Retry-After header is honoured up to
    backoff_max_s. Redirects are never followed (the key must not travel to another address): a 3xx is an
    error naming its target. max_response_bytes: larger replies are an error. logprobs_mode: 'required' (error
    if the server gives none) or 'sample' (declared fallback: sample_k replies at sample_temperature, label
    frequencies). max_concurrency: parallel requests for one view's queries.
    """

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = ""
    api_key_env: Optional[str] = "OPENAI_API_KEY"
    timeout_s: Annotated[float, Range(gt=0, le=3600)] = 60.0
    max_retries: Annotated[int, Range(ge=0, le=20)] = 3
    backoff_s: Annotated[float, Range(ge=0, le=600)] = 0.5
    backoff_max_s: Annotated[float, Range(ge=0, le=600)] = 8.0
    top_logprobs: Annotated[int, Range(ge=1, le=1_000_000)] = 20
    max_concurrency: Annotated[int, Range(ge=1, le=64)] = 4
    logprobs_mode: str = "required"
    sample_k: Annotated[int, Range(ge=1, le=100)] = 8
    sample_temperature: Annotated[float, Range(gt=0, le=10)] = 1.0
    max_response_bytes: Annotated[int, Range(ge=1024)] = 8_000_000

    def __post_init__(self) -> None:
        check_bounds(self)
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"openai.base_url must start with http:// or https://, got {self.base_url!r}")
        if not self.model:
            raise ValueError("openai.model must name the served model")
        if self.backoff_max_s < self.backoff_s:
            raise ValueError("openai retries need 0 <= backoff_s <= backoff_max_s")
        if self.logprobs_mode not in ("required", "sample"):
            raise ValueError(f"openai.logprobs_mode must be 'required' or 'sample', got {self.logprobs_mode!r}")



def chat_messages(req: PromptRequest, image_url: Optional[str] = None) -> list[dict]:
    """OpenAI message list for one request: optional system turn, then image (data URL) and text.
    image_url: the request image's data URL when already encoded."""
    messages: list[dict] = []
    if req.system:
        messages.append({"role": "system", "content": req.system})
    content: list[dict] = []
    if req.image is not None:
        content.append({"type": "image_url", "image_url": {"url": image_url or to_data_url(req.image)}})
    content.append({"type": "text", "text": req.text})
    messages.append({"role": "user", "content": content})
    return messages


def parse_top_logprobs(body: dict) -> tuple[list[tuple[str, float]], Optional[tuple[str, float]], int]:
    """(top tokens, chosen token, prompt tokens) from a chat-completion body; VLMResponseError if malformed
    or without log-probabilities."""
    try:
        choice = body["choices"][0]
    except (KeyError, IndexError, TypeError):
        raise VLMResponseError(f"malformed chat completion (no choices): {_snippet(body)}") from None
    logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not content:
        raise VLMResponseError("the server answered without log-probabilities (choices[0].logprobs.content is "
                               "empty); use a server that supports logprobs or set openai.logprobs_mode: sample")
    first = content[0]
    try:
        top = [(str(t["token"]), float(t["logprob"])) for t in first.get("top_logprobs") or []]
        chosen = (str(first["token"]), float(first["logprob"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise VLMResponseError(f"malformed logprobs entry: {_snippet(first)}") from None
    if not top:
        top = [chosen]
    for token, lp in top + [chosen]:
        if not (math.isfinite(lp) or lp == -math.inf) or lp > 1e-6:
            raise VLMResponseError(f"the server returned log-probability {lp} for token {token!r}: not a "
                                   "log-probability (finite and <= 0)")
    usage = body.get("usage") or {}
    return top, chosen, int(usage.get("prompt_tokens") or 0)


def _snippet(obj, n: int = 300) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj, default=str)
    return text if len(text) <= n else text[:n] + "..."


class OpenAIScorer:
    """TokenScorer over an OpenAI-compatible server; a view's queries are sent concurrently."""

    backend = "openai"

    def __init__(self, config: OpenAIConfig) -> None:
        self.config = config
        self._api_key = os.environ.get(config.api_key_env) if config.api_key_env else None
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.model_id = f"{config.model}@{config.base_url.rstrip('/')}"
        self.probability_method = ("logprobs" if config.logprobs_mode == "required"
                                   else f"sampled(k={config.sample_k})")

    def __repr__(self) -> str:
        return f"OpenAIScorer(url={self.url!r}, model={self.config.model!r})"

    # -- HTTP -------------------------------------------------------------------------------------
    def _post(self, payload: dict) -> dict:
        """POST with bounded retries and exponential backoff on connection errors, timeouts, 408, 429 and 5xx."""
        data = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        cfg = self.config
        last, wait = "", 0.0
        for attempt in range(cfg.max_retries + 1):
            if attempt:
                time.sleep(min(cfg.backoff_max_s, max(wait, cfg.backoff_s * 2 ** (attempt - 1))))
            try:
                status, reply_headers, raw = self._exchange(data, headers)
            except (OSError, http.client.HTTPException) as err:  # refused, reset, timed out, malformed reply
                last, wait = f"{type(err).__name__}: {err}", 0.0
                continue
            if 300 <= status < 400:
                raise VLMResponseError(f"VLM server {self.url} redirected (HTTP {status}) to "
                                       f"{reply_headers.get('Location', '(no Location)')}: redirects are not "
                                       "followed (the API key must not travel elsewhere); set openai.base_url to "
                                       "the final address")
            if status >= 400:
                detail = _error_message(raw, reply_headers)
                if status in _RETRY_STATUS:
                    last, wait = f"HTTP {status}: {detail}", _retry_after(reply_headers)
                    continue
                raise VLMResponseError(f"VLM server {self.url} rejected the request: HTTP {status}: {detail}")
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                text = raw[:300].decode("utf-8", "replace")
                raise VLMResponseError(f"VLM server {self.url} answered with invalid JSON: {_snippet(text)}") from None
            if not isinstance(body, dict):
                raise VLMResponseError(f"VLM server {self.url} answered with a non-object: {_snippet(body)}")
            return body
        raise VLMConnectionError(f"VLM server {self.url} unavailable after {cfg.max_retries + 1} attempts "
                                 f"(timeout {cfg.timeout_s} s): {last}")

    def _exchange(self, data: bytes, headers: dict) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One POST: (status, headers, body bytes), all within timeout_s: a watchdog shuts the socket at the
        deadline, so a server trickling bytes cannot hold the robot. Raises OSError (TimeoutError at the
        deadline), http.client.HTTPException, or VLMResponseError for a reply over max_response_bytes."""
        cfg = self.config
        parts = urllib.parse.urlsplit(self.url)
        conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_class(parts.hostname, parts.port, timeout=cfg.timeout_s)
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            if conn.sock is not None:
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        watchdog = threading.Timer(cfg.timeout_s, expire)
        watchdog.start()
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            conn.request("POST", path, body=data, headers=headers)
            resp = conn.getresponse()
            length = resp.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > cfg.max_response_bytes:
                raise VLMResponseError(f"VLM server {self.url} announced a reply of {length} bytes, over "
                                       f"openai.max_response_bytes ({cfg.max_response_bytes})")
            chunks, size = [], 0
            while True:
                if expired.is_set():  # also when the deadline passed before the socket existed (a slow connect)
                    raise TimeoutError(f"no complete reply within {cfg.timeout_s} s")
                chunk = resp.read1(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > cfg.max_response_bytes:
                    raise VLMResponseError(f"VLM server {self.url} sent more than openai.max_response_bytes "
                                           f"({cfg.max_response_bytes}) bytes")
                chunks.append(chunk)
            if expired.is_set():  # the watchdog closed the socket: what arrived is cut short
                raise TimeoutError(f"no complete reply within {cfg.timeout_s} s")
            return resp.status, resp.headers, b"".join(chunks)
        except (OSError, http.client.HTTPException):
            if expired.is_set():
                raise TimeoutError(f"no complete reply within {cfg.timeout_s} s") from None
            raise
        finally:
            watchdog.cancel()
            conn.close()

    # -- scoring ----------------------------------------------------------------------------------
    def _score_one(self, req: PromptRequest, top_k: int, image_url: Optional[str] = None) -> NextToken:
        cfg = self.config
        base = {"model": cfg.model, "messages": chat_messages(req, image_url), "max_tokens": 1}
        if cfg.logprobs_mode == "sample":
            return self._sample(req, base)
        k = max(cfg.top_logprobs, top_k)
        body = self._post({**base, "temperature": 0.0, "logprobs": True, "top_logprobs": k})
        top, chosen, n_in = parse_top_logprobs(body)
        cand, notes = fill_missing(candidate_logprobs(top, req.candidates, req.casefold), min(lp for _, lp in top))
        return NextToken(candidate_logprobs=cand, top=top[:top_k] if top_k else [], greedy=chosen,
                         tokens_in=n_in, tokens_out=1, method="logprobs", notes=notes)

    def _sample(self, req: PromptRequest, base: dict) -> NextToken:
        cfg = self.config
        replies, n_in = [], 0
        for _ in range(cfg.sample_k):
            body = self._post({**base, "max_tokens": 3, "temperature": cfg.sample_temperature})
            try:
                replies.append(str(body["choices"][0]["message"]["content"] or ""))
            except (KeyError, IndexError, TypeError):
                raise VLMResponseError(f"malformed chat completion: {_snippet(body)}") from None
            n_in += int((body.get("usage") or {}).get("prompt_tokens") or 0)
        cand = sampled_logprobs(replies, req.candidates, req.casefold)
        notes = ("no label sampled; uniform",) if not np.isfinite(cand).any() else ()
        return NextToken(candidate_logprobs=cand, tokens_in=n_in, tokens_out=cfg.sample_k,
                         method=self.probability_method, notes=notes)

    def generate(self, req: TextRequest) -> GeneratedText:
        """One chat completion at temperature 0: the images (data URLs, in order), then the text."""
        content = [{"type": "image_url", "image_url": {"url": to_data_url(im)}} for im in req.images]
        content.append({"type": "text", "text": req.text})
        body = self._post({"model": self.config.model, "messages": [{"role": "user", "content": content}],
                           "max_tokens": req.max_tokens, "temperature": 0.0})
        try:
            text = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise VLMResponseError(f"malformed chat completion (no message content): {_snippet(body)}") from None
        if not isinstance(text, str):
            raise VLMResponseError(f"the server's reply has no text content: {_snippet(body)}")
        usage = body.get("usage") or {}
        return GeneratedText(text.strip(), int(usage.get("prompt_tokens") or 0),
                             int(usage.get("completion_tokens") or 0))

    def score(self, requests: Sequence[PromptRequest], top_k: int = 0) -> list[NextToken]:
        """One chat completion per request, up to max_concurrency in flight; a shared image is encoded once."""
        urls: dict[str, str] = {}
        for r in requests:
            if r.image is not None:
                key = image_hash(r.image)
                if key not in urls:
                    urls[key] = to_data_url(r.image)
        url_of = [urls[image_hash(r.image)] if r.image is not None else None for r in requests]
        if len(requests) == 1 or self.config.max_concurrency == 1:
            return [self._score_one(r, top_k, u) for r, u in zip(requests, url_of)]
        with ThreadPoolExecutor(max_workers=min(self.config.max_concurrency, len(requests))) as pool:
            return list(pool.map(lambda ru: self._score_one(ru[0], top_k, ru[1]), zip(requests, url_of)))


def _error_message(raw: bytes, headers) -> str:
    """The error message of an HTTP error reply (OpenAI's {"error": {"message"}} or the body's start)."""
    try:
        body = json.loads(raw)
        msg = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else body.get("error")
        return str(msg or _snippet(body))
    except Exception:  # noqa: BLE001 - any unreadable error body
        return _snippet(raw[:300].decode("utf-8", "replace")) or "no details"


def _retry_after(headers) -> float:
    """Seconds a Retry-After header (delay in seconds, or an HTTP date) asks to wait; 0 without one."""
    value = headers.get("Retry-After")
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return 0.0


# A remote client: `eqa serve-vlm` does not serve it (serve the model behind it directly).
BACKEND = Backend("openai", OpenAIConfig, build=lambda settings, cache, visual_prompt: PromptedVLM(
    OpenAIScorer(settings), cache, visual_prompt), writes_text=True)
