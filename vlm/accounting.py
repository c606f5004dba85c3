"""Per-call VLM accounting (latency seconds, tokens in/out) and per-episode totals."""
from __future__ import annotations

from vlm.queries import CallRecord


class Accounting:
    """Call records since the last `reset()` (call it at each episode start)."""

    def __init__(self) -> None:
        self._records: list[CallRecord] = []

    def add(self, record: CallRecord) -> None:
        self._records.append(record)

    def reset(self) -> None:
        self._records = []

    @property
    def records(self) -> list[CallRecord]:
        return list(self._records)

    def totals(self) -> dict:
        """Episode totals: calls, queries, cache hits, latency_s, tokens_in, tokens_out."""
        r = self._records
        return {
            "calls": len(r),
            "queries": sum(x.n_queries for x in r),
            "cache_hits": sum(x.n_cached for x in r),
            "latency_s": float(sum(x.latency_s for x in r)),
            "tokens_in": sum(x.tokens_in for x in r),
            "tokens_out": sum(x.tokens_out for x in r),
        }
