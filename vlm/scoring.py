"""The token-scoring contract shared by the hf, openai and builtin backends and the VLM server.

A TokenScorer turns (image, prompt text) into the model's next-token distribution: log-probabilities
of requested candidate labels, plus the top-k tokens (what an OpenAI-compatible server returns). Scorers that
can also write text (hf, openai) have `generate(TextRequest) -> GeneratedText` (greedy decoding), used for
open questions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class PromptRequest:
    """One user turn: an optional RGB uint8 image followed by text; candidates are labels to score."""

    text: str
    image: Optional[np.ndarray] = None
    system: Optional[str] = None
    candidates: tuple[str, ...] = ()
    casefold: bool = False


@dataclass
class NextToken:
    """Next-token result. candidate_logprobs: one per requested candidate (natural log, NaN-free;
    -inf = impossible). top: up to top_k (token text, logprob), best first. greedy: the argmax token.
    method: 'logprobs' or the declared fallback ('sampled(k=..)'); notes: fallbacks applied."""

    candidate_logprobs: np.ndarray
    top: list[tuple[str, float]] = field(default_factory=list)
    greedy: Optional[tuple[str, float]] = None
    tokens_in: int = 0
    tokens_out: int = 1
    method: str = "logprobs"
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextRequest:
    """One user turn for free text: RGB uint8 images (in order), then text; at most max_tokens tokens back."""

    text: str
    images: tuple[np.ndarray, ...] = ()
    max_tokens: int = 32


@dataclass
class GeneratedText:
    """A greedy reply: its text (special tokens removed, stripped) and token counts."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0


class TokenScorer(Protocol):
    """backend: short name; model_id: identifies weights for caching; probability_method: declared."""

    backend: str
    model_id: str
    probability_method: str

    def score(self, requests: Sequence[PromptRequest], top_k: int = 0) -> list[NextToken]:
        """Score all requests, batching where the backend allows."""
        ...
