"""Probabilities from token log-probabilities: candidate matching and the restricted softmax.

A candidate label ("A", "Yes") collects every returned token that equals it after stripping
whitespace and byte-level BPE markers (so "A", " A", "ĠA", "▁A" all count); case-insensitive
matching is used for Yes/No. Variants are combined with logsumexp.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

_MARKERS = "\u0120\u2581\u010a"  # byte-level space (Ġ), sentencepiece space (▁), byte-level newline (Ċ)


def normalize_token(token: str, casefold: bool = False) -> str:
    """Token text with surrounding whitespace and BPE space markers removed."""
    text = token.strip().strip(_MARKERS).strip()
    return text.casefold() if casefold else text


def logsumexp(values: Iterable[float]) -> float:
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return float("-inf")
    m = float(np.max(arr))
    if not np.isfinite(m):
        return m
    return m + float(np.log(np.sum(np.exp(arr - m))))


def candidate_logprobs(top: Sequence[tuple[str, float]], labels: Sequence[str], casefold: bool = False) -> np.ndarray:
    """Log-probability per label from (token, logprob) pairs; NaN where no token matched."""
    keys = [normalize_token(lbl, casefold) for lbl in labels]
    buckets: dict[str, list[float]] = {k: [] for k in keys}
    for token, lp in top:
        key = normalize_token(token, casefold)
        if key in buckets and lp is not None and np.isfinite(lp):
            buckets[key].append(float(lp))
    return np.array([logsumexp(buckets[k]) if buckets[k] else np.nan for k in keys])


def fill_missing(logprobs: np.ndarray, floor: float) -> tuple[np.ndarray, tuple[str, ...]]:
    """Replace NaN (candidate not among the returned top tokens) by `floor`, an upper bound on its value.

    Returns the filled array and a note per filled label index ("missing:<i>").
    """
    lp = np.asarray(logprobs, dtype=np.float64).copy()
    missing = np.flatnonzero(np.isnan(lp))
    lp[missing] = floor
    return lp, tuple(f"missing:{i}" for i in missing)


def restricted_softmax(logprobs: np.ndarray) -> np.ndarray:
    """Softmax over the candidates only; -inf entries get probability 0, all -inf gives uniform."""
    lp = np.asarray(logprobs, dtype=np.float64)
    if lp.ndim != 1 or lp.size == 0:
        raise ValueError(f"need a non-empty 1-D array of log-probabilities, got shape {lp.shape}")
    if np.any(np.isnan(lp)):
        raise ValueError("log-probabilities contain NaN; fill missing candidates first")
    finite = np.isfinite(lp)
    if not finite.any():
        return np.full(lp.size, 1.0 / lp.size)
    m = np.max(lp[finite])
    e = np.where(finite, np.exp(np.where(finite, lp, m) - m), 0.0)
    return e / e.sum()


def sampled_logprobs(samples: Sequence[str], labels: Sequence[str], casefold: bool = False) -> np.ndarray:
    """Fallback for backends without log-probabilities: log of each label's frequency among samples
    (first token of each sampled reply); labels never sampled get -inf."""
    keys = [normalize_token(lbl, casefold) for lbl in labels]
    counts = np.zeros(len(keys))
    for s in samples:
        words = s.split()
        first = normalize_token(words[0].rstrip(".,:;)!"), casefold) if words else ""
        if first in keys:
            counts[keys.index(first)] += 1
    with np.errstate(divide="ignore"):
        return np.log(counts / max(len(samples), 1))
