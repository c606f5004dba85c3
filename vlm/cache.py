"""On-disk response cache: one JSON file per (backend, model id, image hash, prompt, labels) key.

Writes are atomic (temp file + rename) so concurrent runs and crashes never leave partial entries.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Optional, Sequence


def files_digest(paths: Sequence[Path], chunk: int = 1 << 22) -> str:
    """sha256 (16 hex digits) over the names and contents of `paths`, in order: model ids come from it, so that
    changed weights (even of the same name and size) get another id, another cache and another calibration."""
    h = hashlib.sha256()
    for path in paths:
        h.update(Path(path).name.encode() + b"\0")
        with open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()[:16]


def cache_key(backend: str, model_id: str, image_sha: str, prompt: str, labels: Sequence[str]) -> str:
    """sha256 hex over the canonical JSON of the key fields."""
    blob = json.dumps([backend, model_id, image_sha, prompt, list(labels)], ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """JSON entries under `root/<key[:2]>/<key>.json`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Optional[dict]:
        """The stored entry, or None when absent or unreadable (a corrupt entry counts as a miss)."""
        path = self._path(key)
        try:
            with open(path) as f:
                entry = json.load(f)
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, entry: dict) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(entry, f)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json"))
