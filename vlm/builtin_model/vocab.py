"""Word-level vocabulary for questions and choices (lower-cased alphanumeric words; unknown -> <unk>)."""
from __future__ import annotations

import re
from typing import Iterable, Sequence

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class Vocab:
    """Index 0 = padding, 1 = unknown word; the rest sorted (deterministic)."""

    def __init__(self, words: Sequence[str]):
        self.words = [PAD, UNK] + [w for w in words if w not in (PAD, UNK)]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, texts: Iterable[str]) -> "Vocab":
        return cls(sorted({w for t in texts for w in tokenize(t)}))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str, max_len: int) -> list[int]:
        """Word ids, truncated / padded with 0 to max_len (at least one id: <unk> for empty text)."""
        ids = [self.index.get(w, 1) for w in tokenize(text)][:max_len] or [1]
        return ids + [0] * (max_len - len(ids))
