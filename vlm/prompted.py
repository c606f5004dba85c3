"""VLM over any TokenScorer (hf, openai, builtin): text prompts from `vlm.prompts`, visual prompting
for directions (lettered circles drawn on the view), probabilities from candidate-token log-probs."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from vlm import prompts
from vlm.cache import ResponseCache
from vlm.imaging import image_hash
from vlm.interface import VLM, Prepared, Scored, VLMInfo
from vlm.queries import QueryKind, Query
from vlm.scoring import PromptRequest, TextRequest, TokenScorer
from vlm.visual_prompt import VisualPromptConfig, draw_labels


class PromptedVLM(VLM):
    """The three view-level queries share the raw image; `direction` sends the annotated copy."""

    def __init__(self, scorer: TokenScorer, cache: Optional[ResponseCache] = None,
                 visual_prompt: VisualPromptConfig = VisualPromptConfig()) -> None:
        fallback = None if scorer.probability_method == "logprobs" else (
            "no log-probabilities: label frequencies over sampled replies")
        super().__init__(VLMInfo(scorer.backend, scorer.model_id, scorer.probability_method, fallback=fallback), cache)
        self.scorer = scorer
        self.visual_prompt = visual_prompt

    def _prepare(self, image: np.ndarray, image_sha: str, query: Query) -> Prepared:
        text, labels = prompts.token_prompt(query.kind, query.question, query.choices, len(query.points_px))
        if query.kind == QueryKind.DIRECTION:
            image = draw_labels(image, query.points_px, labels, self.visual_prompt)
            image_sha = image_hash(image)
        return Prepared(query, labels, text, image, image_sha, casefold=query.kind in (QueryKind.RELEVANCE, QueryKind.WORTH_EXPLORING))

    def _score(self, prepared: Sequence[Prepared]) -> list[Scored]:
        requests = [PromptRequest(text=p.prompt, image=p.image, candidates=p.labels, casefold=p.casefold)
                    for p in prepared]
        return [Scored(r.candidate_logprobs, r.method, r.notes, r.tokens_in, r.tokens_out)
                for r in self.scorer.score(requests)]

    @property
    def writes_text(self) -> bool:
        return callable(getattr(self.scorer, "generate", None))

    def _generate(self, images: tuple[np.ndarray, ...], prompt: str, max_tokens: int) -> tuple[str, int, int]:
        reply = self.scorer.generate(TextRequest(prompt, images, max_tokens))
        return reply.text, reply.tokens_in, reply.tokens_out

    def close(self) -> None:
        closer = getattr(self.scorer, "close", None)
        if closer:
            closer()
