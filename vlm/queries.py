"""Query and result types of the VLM interface (DESIGN.md section 3).

Images are RGB uint8 HxWx3. Pixel points are (u, v) = (column, row) in pixels, integer
values at pixel centres, as in `mapping.frame.Intrinsics`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Optional

import numpy as np


class QueryKind(StrEnum):
    """What a query asks about a view (DESIGN.md section 3); the value is the name in records and caches."""

    ANSWER = "answer"  # p over the choices
    RELEVANCE = "relevance"  # P(the view lets me answer)
    DIRECTION = "direction"  # p over pixel points: which is most worth exploring
    WORTH_EXPLORING = "worth_exploring"  # P(something in the view is worth exploring)
    LOCATE = "locate"  # where in the image the question's target is: p over image cells (not every backend)


MIN_CHOICES = 2
MAX_CHOICES = 6
MAX_POINTS = 6


@dataclass(frozen=True)
class Query:
    """One VLM question about one view: kind, question text, choices (answer) or pixel points (direction)."""

    kind: QueryKind
    question: str
    choices: tuple[str, ...] = ()
    points_px: tuple[tuple[float, float], ...] = ()

    def validate(self, image_shape: tuple[int, ...]) -> None:
        """Raise ValueError naming the problem if the query is malformed for an image of this shape."""
        if self.kind not in set(QueryKind):
            raise ValueError(f"unknown query kind {self.kind!r}; known: {[k.value for k in QueryKind]}")
        if not isinstance(self.question, str) or not self.question.strip():
            raise ValueError("question must be a non-empty string")
        if self.kind == QueryKind.ANSWER:
            if not MIN_CHOICES <= len(self.choices) <= MAX_CHOICES:
                raise ValueError(f"answer needs {MIN_CHOICES} to {MAX_CHOICES} choices, got {len(self.choices)}")
            for c in self.choices:
                if not isinstance(c, str) or not c.strip():
                    raise ValueError(f"choices must be non-empty strings, got {c!r}")
        if self.kind == QueryKind.DIRECTION:
            if not 1 <= len(self.points_px) <= MAX_POINTS:
                raise ValueError(f"direction_scores needs 1 to {MAX_POINTS} points, got {len(self.points_px)}")
            h, w = image_shape[0], image_shape[1]
            for u, v in self.points_px:
                if not (np.isfinite(u) and np.isfinite(v)) or not (-0.5 <= u < w - 0.5 and -0.5 <= v < h - 0.5):
                    raise ValueError(f"point ({u}, {v}) px is outside the {w}x{h} image")


@dataclass
class QueryOutput:
    """Probabilities for one query.

    labels: the candidate tokens ("A".., or "Yes"/"No"); probs sum to 1 over them.
    method: how they were obtained ("logprobs", "sampled(k=8)", "clip-similarity").
    notes: declared fallbacks applied (e.g. a candidate missing from top_logprobs).
    """

    kind: QueryKind
    labels: tuple[str, ...]
    probs: np.ndarray
    prompt: str
    method: str
    cached: bool = False
    notes: tuple[str, ...] = ()

    def to_record(self) -> dict:
        return {"kind": self.kind, "labels": list(self.labels), "probs": [float(p) for p in self.probs],
                "prompt": self.prompt, "method": self.method, "cached": self.cached, "notes": list(self.notes)}


@dataclass(frozen=True)
class CallRecord:
    """Accounting for one interface call: queries, those answered from the cache and those the model scored
    (the rest had a single candidate), wall latency in seconds, tokens in/out (0 for cache hits)."""

    kinds: tuple[QueryKind, ...]
    n_queries: int
    n_cached: int
    latency_s: float
    tokens_in: int
    tokens_out: int
    n_scored: int = 0

    def to_record(self) -> dict:
        return {"kinds": list(self.kinds), "n_queries": self.n_queries, "n_cached": self.n_cached,
                "n_scored": self.n_scored, "latency_s": self.latency_s, "tokens_in": self.tokens_in,
                "tokens_out": self.tokens_out}


def cell_label(u: float, v: float) -> str:
    """A locate label: the (u, v) pixel centre of an image cell."""
    return f"{u:.1f},{v:.1f}"


def cell_pixel(label: str) -> tuple[float, float]:
    """(u, v) pixels of a locate label."""
    u, v = label.split(",")
    return float(u), float(v)


@dataclass
class ViewResult:
    """All queries for one view. answer: p over choices; direction: p over points; scalars are P(Yes);
    target_px: (u, v) pixel centre of the most probable image cell of the locate query."""

    answer: Optional[np.ndarray]
    relevance: Optional[float]
    direction: Optional[np.ndarray]
    worth_exploring: Optional[float]
    outputs: dict[str, QueryOutput] = field(default_factory=dict)
    call: Optional[CallRecord] = None
    target_px: Optional[tuple[float, float]] = None

    def to_record(self) -> dict:
        """JSON-ready dict with probabilities, exact prompts, methods and accounting."""
        return {
            "answer": None if self.answer is None else [float(p) for p in self.answer],
            "relevance": self.relevance,
            "direction": None if self.direction is None else [float(p) for p in self.direction],
            "worth_exploring": self.worth_exploring,
            "target_px": None if self.target_px is None else [float(v) for v in self.target_px],
            "queries": {k: o.to_record() for k, o in self.outputs.items()},
            "call": None if self.call is None else self.call.to_record(),
        }
