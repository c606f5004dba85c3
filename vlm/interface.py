"""The VLM interface: the four queries of DESIGN.md section 3, one-call-per-view batching,
the on-disk response cache and per-call accounting. Backends implement `_prepare` and `_score`."""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from vlm import prompts
from vlm.accounting import Accounting
from vlm.cache import ResponseCache, cache_key
from vlm.imaging import check_image, image_hash
from vlm.probs import restricted_softmax
from vlm.queries import CallRecord, Query, QueryKind, QueryOutput, ViewResult, cell_pixel


@dataclass(frozen=True)
class VLMInfo:
    """What a backend is and how it gets probabilities.

    probability_method: 'logprobs' (restricted softmax over candidate-token log-probabilities),
    'sampled(k=..)' (declared fallback: label frequencies over k sampled replies) or
    'clip-similarity' (softmax of image-text similarities).
    """

    backend: str
    model_id: str
    probability_method: str
    prompt_version: str = prompts.PROMPT_VERSION
    fallback: Optional[str] = None

    def to_record(self) -> dict:
        return {"backend": self.backend, "model_id": self.model_id, "probability_method": self.probability_method,
                "prompt_version": self.prompt_version, "fallback": self.fallback}


@dataclass
class Prepared:
    """A query made concrete: candidate labels, the exact prompt text and the image actually sent."""

    query: Query
    labels: tuple[str, ...]
    prompt: str
    image: np.ndarray
    image_sha: str
    casefold: bool = False
    payload: Any = None


@dataclass
class Scored:
    """Backend output for one Prepared query: unnormalised log-domain scores per label."""

    scores: np.ndarray
    method: str
    notes: tuple[str, ...] = ()
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass(frozen=True)
class OpenAnswer:
    """A free-text answer to an open question: the text, the exact prompt, the number of views sent, wall
    latency (s) and tokens in/out."""

    text: str
    prompt: str
    n_images: int
    latency_s: float
    tokens_in: int = 0
    tokens_out: int = 0

    def to_record(self) -> dict:
        return {"text": self.text, "prompt": self.prompt, "n_images": self.n_images, "latency_s": self.latency_s,
                "tokens_in": self.tokens_in, "tokens_out": self.tokens_out}


class VLM(ABC):
    """Base class: validation, caching, batching of a view's queries into one backend call, accounting.
    supported_kinds: the query kinds the backend answers (locate only where a backend adds it). writes_text:
    whether it answers open questions in free text (`answer_open`)."""

    supported_kinds: tuple[QueryKind, ...] = (QueryKind.ANSWER, QueryKind.RELEVANCE, QueryKind.DIRECTION,
                                              QueryKind.WORTH_EXPLORING)

    def __init__(self, info: VLMInfo, cache: Optional[ResponseCache] = None) -> None:
        self.info = info
        self.cache = cache
        self.accounting = Accounting()

    # -- the four queries -------------------------------------------------------------------------
    def answer(self, image: np.ndarray, question: str, choices: Sequence[str]) -> np.ndarray:
        """p over choices (restricted softmax over the choice letters)."""
        return self.run(image, [Query(QueryKind.ANSWER, question, tuple(choices))])[0][0].probs

    def relevance(self, image: np.ndarray, question: str) -> float:
        """P(the view lets me answer the question)."""
        return float(self.run(image, [Query(QueryKind.RELEVANCE, question)])[0][0].probs[0])

    def direction_scores(self, image: np.ndarray, question: str, points_px: Sequence[Sequence[float]]) -> np.ndarray:
        """p over the (u, v) pixel points: which is most worth exploring."""
        return self.run(image, [Query(QueryKind.DIRECTION, question, points_px=_points(points_px))])[0][0].probs

    def worth_exploring(self, image: np.ndarray, question: str) -> float:
        """P(yes, something in this view is worth exploring)."""
        return float(self.run(image, [Query(QueryKind.WORTH_EXPLORING, question)])[0][0].probs[0])

    def query_view(self, image: np.ndarray, question: str, choices: Optional[Sequence[str]] = None,
                   points_px: Optional[Sequence[Sequence[float]]] = None,
                   kinds: Sequence[QueryKind] = (QueryKind.ANSWER, QueryKind.RELEVANCE, QueryKind.DIRECTION,
                                                 QueryKind.WORTH_EXPLORING)) -> ViewResult:
        """All requested queries for one view in one backend call. `answer` is skipped without
        choices and `direction` without points."""
        queries = []
        for kind in kinds:
            if kind == QueryKind.ANSWER:
                if choices:
                    queries.append(Query(QueryKind.ANSWER, question, tuple(choices)))
            elif kind == QueryKind.DIRECTION:
                if points_px is not None and len(points_px) > 0:
                    queries.append(Query(QueryKind.DIRECTION, question, points_px=_points(points_px)))
            else:
                queries.append(Query(kind, question))
        outputs, record = self.run(image, queries)
        by_kind = {o.kind: o for o in outputs}
        yes = lambda k: float(by_kind[k].probs[0]) if k in by_kind else None  # noqa: E731
        return ViewResult(
            answer=by_kind[QueryKind.ANSWER].probs if QueryKind.ANSWER in by_kind else None,
            relevance=yes(QueryKind.RELEVANCE),
            direction=by_kind[QueryKind.DIRECTION].probs if QueryKind.DIRECTION in by_kind else None,
            worth_exploring=yes(QueryKind.WORTH_EXPLORING),
            outputs=by_kind, call=record,
            target_px=cell_pixel(by_kind[QueryKind.LOCATE].labels[int(np.argmax(by_kind[QueryKind.LOCATE].probs))])
            if QueryKind.LOCATE in by_kind else None)

    @property
    def writes_text(self) -> bool:
        """Whether `answer_open` works (backends that generate text: hf, openai)."""
        return False

    def answer_open(self, images: Sequence[np.ndarray], question: str, max_tokens: int = 32) -> OpenAnswer:
        """A free-text answer to an open question from 1 or more views (most relevant first), greedy, at most
        max_tokens tokens. Backends that cannot write text raise ValueError."""
        if not self.writes_text:
            raise ValueError(f"the {self.info.backend} backend cannot write free-text answers (open questions); "
                             "use a backend that generates text: hf or openai")
        if not images:
            raise ValueError("an open answer needs at least one view")
        if not isinstance(question, str) or not question.strip():
            raise ValueError("question must be a non-empty string")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        t0 = time.perf_counter()
        checked = tuple(check_image(im) for im in images)
        prompt = prompts.open_answer_prompt(question, len(checked))
        text, tokens_in, tokens_out = self._generate(checked, prompt, max_tokens)
        latency = time.perf_counter() - t0
        self.accounting.add(CallRecord(("open_answer",), 1, 0, latency, tokens_in, tokens_out, n_scored=1))
        return OpenAnswer(text, prompt, len(checked), latency, tokens_in, tokens_out)

    def _generate(self, images: tuple[np.ndarray, ...], prompt: str, max_tokens: int) -> tuple[str, int, int]:
        """(text, tokens in, tokens out) of a greedy reply; backends with writes_text implement it."""
        raise NotImplementedError

    # -- machinery --------------------------------------------------------------------------------
    def run(self, image: np.ndarray, queries: Sequence[Query]) -> tuple[list[QueryOutput], CallRecord]:
        """Answer queries about one image: cache hits first, then one batched backend call for the rest."""
        t0 = time.perf_counter()
        image = check_image(image)
        if not queries:
            raise ValueError("no queries to run")
        kinds = [q.kind for q in queries]
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"one query per kind per call, got {kinds}")
        for q in queries:
            q.validate(image.shape)
            if q.kind not in self.supported_kinds:
                raise ValueError(f"the {self.info.backend} backend does not answer {q.kind!r} queries "
                                 f"(it answers {', '.join(self.supported_kinds)})")
        sha = image_hash(image)
        prepared = [self._prepare(image, sha, q) for q in queries]
        outputs: list[Optional[QueryOutput]] = [None] * len(prepared)
        keys: list[Optional[str]] = [None] * len(prepared)
        todo: list[int] = []
        n_cached = 0
        for i, p in enumerate(prepared):
            if len(p.labels) == 1:  # a single candidate needs no model call
                outputs[i] = QueryOutput(p.query.kind, p.labels, np.ones(1), p.prompt, "single-candidate")
                continue
            if self.cache is not None:
                keys[i] = cache_key(f"{self.info.backend}:{self.info.probability_method}", self.info.model_id,
                                    p.image_sha, p.prompt, p.labels)
                hit = self._from_cache(p, self.cache.get(keys[i]))
                if hit is not None:
                    outputs[i] = hit
                    n_cached += 1
                    continue
            todo.append(i)
        tokens_in = tokens_out = 0
        if todo:
            scored = self._score([prepared[i] for i in todo])
            if len(scored) != len(todo):
                raise RuntimeError(f"backend returned {len(scored)} results for {len(todo)} queries")
            for i, s in zip(todo, scored):
                p = prepared[i]
                probs = restricted_softmax(s.scores)
                outputs[i] = QueryOutput(p.query.kind, p.labels, probs, p.prompt, s.method, False, tuple(s.notes))
                tokens_in += s.tokens_in
                tokens_out += s.tokens_out
                if self.cache is not None:
                    self.cache.put(keys[i], {"labels": list(p.labels), "probs": [float(x) for x in probs],
                                             "method": s.method, "notes": list(s.notes), "prompt": p.prompt})
        record = CallRecord(tuple(kinds), len(queries), n_cached, time.perf_counter() - t0, tokens_in, tokens_out,
                            n_scored=len(todo))
        self.accounting.add(record)
        return [o for o in outputs if o is not None], record

    @staticmethod
    def _from_cache(p: Prepared, entry: Optional[dict]) -> Optional[QueryOutput]:
        if not entry or entry.get("labels") != list(p.labels) or entry.get("prompt") != p.prompt:
            return None
        probs = np.asarray(entry.get("probs", []), dtype=np.float64)
        if probs.shape != (len(p.labels),) or not np.all(np.isfinite(probs)):
            return None
        return QueryOutput(p.query.kind, p.labels, probs, p.prompt, str(entry.get("method")), True,
                           tuple(entry.get("notes", ())))

    def prompt_manifest(self) -> dict:
        """Backend info plus the versioned prompt templates, for the episode record header."""
        return {"vlm": self.info.to_record(), "prompts": prompts.manifest()}

    @abstractmethod
    def _prepare(self, image: np.ndarray, image_sha: str, query: Query) -> Prepared:
        """Build labels, exact prompt and the image to send for one validated query."""

    @abstractmethod
    def _score(self, prepared: Sequence[Prepared]) -> list[Scored]:
        """Score all prepared queries in as few model calls as the backend allows."""

    def close(self) -> None:
        """Release backend resources (default: nothing)."""


def _points(points_px: Sequence[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    arr = np.asarray(points_px, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"points_px must be (N, 2) pixel (u, v) pairs, got shape {arr.shape}")
    return tuple((float(u), float(v)) for u, v in arr)
