"""All VLM prompt texts, versioned. Change PROMPT_VERSION whenever a text that a backend already
sends changes (adding the text of a new query kind leaves the others' answers, and their caches, valid).

Token-scoring backends (hf, openai, builtin) send one user turn: the image, then the text
below; the answer is read from the next-token distribution over the candidate labels.
The clip backend scores the image against the statements below instead.
"""
from __future__ import annotations

from typing import Sequence

from vlm.queries import QueryKind

PROMPT_VERSION = "eqa-prompts-v1"

LETTERS = "ABCDEF"  # choice and point letters: the one place they are written (questions, prompts, narration)
YES, NO = "Yes", "No"
YES_NO = (YES, NO)

ANSWER_TEMPLATE = (
    "You are a robot exploring a house. This is your current view.\n"
    "Question: {question}\n"
    "Choices:\n{choices}\n"
    "Answer with the letter of the correct choice only."
)
RELEVANCE_TEMPLATE = (
    "You are a robot exploring a house. This is your current view.\n"
    "Question: {question}\n"
    "Can the question be answered confidently from this view? Answer Yes or No."
)
DIRECTION_TEMPLATE = (
    "You are a robot exploring a house. This is your current view; lettered circles mark places "
    "you could go next: {letters}.\n"
    "Question: {question}\n"
    "Which marked place is the most worth exploring to answer the question? Answer with the letter only."
)
WORTH_EXPLORING_TEMPLATE = (
    "You are a robot exploring a house. This is your current view.\n"
    "Question: {question}\n"
    "Is there any part of this view worth exploring further to answer the question? Answer Yes or No."
)
# Only backends that score image cells answer it (builtin); recorded with its query, never sent as tokens.
LOCATE_TEMPLATE = (
    "You are a robot exploring a house. This is your current view.\n"
    "Question: {question}\n"
    "Where in the view is what the question asks about? Answer with the image cell."
)

# Open questions (no choices; backends that write text: hf, openai): the most relevant views, then this text.
OPEN_ANSWER_TEMPLATE = (
    "You are a robot that explored a house. {views}\n"
    "Question: {question}\n"
    "Answer the question in a few words."
)

CLIP_ANSWER_TEMPLATE = "A photo of a house. Question: {question} Answer: {choice}"
CLIP_RELEVANCE = ("A photo that clearly shows the answer to: {question}", "A photo unrelated to: {question}")
CLIP_WORTH_EXPLORING = ("A photo of a place where the answer to '{question}' could be found",
                        "A photo of a place with nothing related to '{question}'")
CLIP_DIRECTION_TEMPLATE = "A photo of the place to look at to answer: {question}"


def letter(index: int) -> str:
    """The letter of choice `index` (0 -> "A")."""
    if not 0 <= int(index) < len(LETTERS):
        raise ValueError(f"choice index must be in [0, {len(LETTERS)}), got {index}")
    return LETTERS[int(index)]


def letters(n: int) -> tuple[str, ...]:
    """The first n choice / point letters (n in 1..6)."""
    if not 1 <= n <= len(LETTERS):
        raise ValueError(f"need 1 to {len(LETTERS)} letters, got {n}")
    return tuple(LETTERS[:n])


def _clean(text: str) -> str:
    return " ".join(text.split())


def answer_prompt(question: str, choices: Sequence[str]) -> str:
    block = "\n".join(f"{letter}. {_clean(c)}" for letter, c in zip(letters(len(choices)), choices))
    return ANSWER_TEMPLATE.format(question=_clean(question), choices=block)


def relevance_prompt(question: str) -> str:
    return RELEVANCE_TEMPLATE.format(question=_clean(question))


def direction_prompt(question: str, n_points: int) -> str:
    return DIRECTION_TEMPLATE.format(question=_clean(question), letters=", ".join(letters(n_points)))


def worth_exploring_prompt(question: str) -> str:
    return WORTH_EXPLORING_TEMPLATE.format(question=_clean(question))


def locate_prompt(question: str) -> str:
    return LOCATE_TEMPLATE.format(question=_clean(question))


def open_answer_prompt(question: str, n_images: int) -> str:
    """The text after the images of an open question's answer request (n_images >= 1 views)."""
    if n_images < 1:
        raise ValueError(f"an open answer needs at least one view, got {n_images}")
    views = ("This is the view most relevant to the question." if n_images == 1 else
             f"These are the {n_images} views most relevant to the question, most relevant first.")
    return OPEN_ANSWER_TEMPLATE.format(views=views, question=_clean(question))


def token_prompt(kind: str, question: str, choices: Sequence[str] = (),
                 n_points: int = 0) -> tuple[str, tuple[str, ...]]:
    """(prompt text, candidate labels) for a token-scoring backend."""
    if kind == QueryKind.ANSWER:
        return answer_prompt(question, choices), letters(len(choices))
    if kind == QueryKind.RELEVANCE:
        return relevance_prompt(question), YES_NO
    if kind == QueryKind.DIRECTION:
        return direction_prompt(question, n_points), letters(n_points)
    if kind == QueryKind.WORTH_EXPLORING:
        return worth_exploring_prompt(question), YES_NO
    raise ValueError(f"unknown query kind {kind!r}")


def clip_statements(kind: str, question: str, choices: Sequence[str] = ()) -> tuple[str, ...]:
    """Text statements the clip backend compares with the image (or crops, for directions)."""
    q = _clean(question)
    if kind == QueryKind.ANSWER:
        return tuple(CLIP_ANSWER_TEMPLATE.format(question=q, choice=_clean(c)) for c in choices)
    if kind == QueryKind.RELEVANCE:
        return tuple(s.format(question=q) for s in CLIP_RELEVANCE)
    if kind == QueryKind.WORTH_EXPLORING:
        return tuple(s.format(question=q) for s in CLIP_WORTH_EXPLORING)
    if kind == QueryKind.DIRECTION:
        return (CLIP_DIRECTION_TEMPLATE.format(question=q),)
    raise ValueError(f"unknown query kind {kind!r}")


def manifest() -> dict:
    """Version and templates, for the episode record header."""
    return {
        "version": PROMPT_VERSION,
        "answer": ANSWER_TEMPLATE, "relevance": RELEVANCE_TEMPLATE, "direction": DIRECTION_TEMPLATE,
        "worth_exploring": WORTH_EXPLORING_TEMPLATE, "locate": LOCATE_TEMPLATE, "open_answer": OPEN_ANSWER_TEMPLATE,
        "clip_answer": CLIP_ANSWER_TEMPLATE,
        "clip_relevance": list(CLIP_RELEVANCE), "clip_worth_exploring": list(CLIP_WORTH_EXPLORING),
        "clip_direction": CLIP_DIRECTION_TEMPLATE,
    }
