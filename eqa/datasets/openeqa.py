"""OpenEQA v0 (Majumdar et al. 2024): open-vocabulary questions over recorded episodes.

open-eqa-v0.json: a JSON list of objects with question, answer (free text), category (one of
seven), question_id (UUID), episode_history ("<source>-v0/<nnn>-<source>-<scene>", source hm3d
or scannet) and, for "object localization" questions only, extra_answers (more accepted
answers). open-eqa-v0-184-questions.json: a JSON list of question ids, the 184-question subset
(all HM3D episodes) used for costly evaluations.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CATEGORIES = ("object recognition", "attribute recognition", "object state recognition", "object localization",
              "spatial understanding", "functional reasoning", "world knowledge")
REQUIRED = ("question", "answer", "category", "question_id", "episode_history")
OPTIONAL = ("extra_answers",)
MAIN_FILE = "open-eqa-v0.json"
SUBSET_FILE = "open-eqa-v0-184-questions.json"


@dataclass(frozen=True)
class OpenEqaQuestion:
    question_id: str
    question: str
    answer: str
    category: str
    episode_history: str
    extra_answers: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """"hm3d" or "scannet"."""
        return self.episode_history.split("/")[1].split("-")[1]

    @property
    def episode_index(self) -> int:
        return int(self.episode_history.split("/")[1].split("-")[0])

    @property
    def scene_id(self) -> str:
        """HM3D scene hash (e.g. "BFRyYbPCCPE") or ScanNet scan (e.g. "scene0655_02")."""
        return self.episode_history.split("/")[1].split("-", 2)[2]


@dataclass
class OpenEqaDataset:
    questions: list[OpenEqaQuestion]
    subset_ids: list[str]  # the 184-question subset, in its file's order

    def __len__(self) -> int:
        return len(self.questions)

    def by_id(self) -> dict[str, OpenEqaQuestion]:
        return {q.question_id: q for q in self.questions}

    def subset(self) -> list[OpenEqaQuestion]:
        index = self.by_id()
        return [index[i] for i in self.subset_ids]

    def episodes(self) -> list[str]:
        return sorted({q.episode_history for q in self.questions})


def _parse_episode(value: str) -> bool:
    parts = value.split("/")
    if len(parts) != 2 or not parts[0].endswith("-v0"):
        return False
    fields = parts[1].split("-", 2)
    return len(fields) == 3 and fields[0].isdigit() and fields[1] == parts[0][:-3] and bool(fields[2])


def parse_question(item, where: str) -> OpenEqaQuestion:
    """One question object; ValueError naming `where` (file and list index) and the field."""
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object, got {type(item).__name__}")
    missing = [k for k in REQUIRED if k not in item]
    unknown = sorted(set(item) - set(REQUIRED) - set(OPTIONAL))
    if missing or unknown:
        raise ValueError(f"{where}: missing field(s) {missing}, unknown field(s) {unknown}")
    for k in REQUIRED:
        if not isinstance(item[k], str) or not item[k].strip():
            raise ValueError(f"{where}: field {k!r} must be a non-empty string, got {item[k]!r}")
    if item["category"] not in CATEGORIES:
        raise ValueError(f"{where}: field 'category' must be one of {CATEGORIES}, got {item['category']!r}")
    if not _parse_episode(item["episode_history"]):
        raise ValueError(f"{where}: field 'episode_history' must look like 'hm3d-v0/000-hm3d-<scene>', "
                         f"got {item['episode_history']!r}")
    extra = item.get("extra_answers", [])
    if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
        raise ValueError(f"{where}: field 'extra_answers' must be a list of strings, got {extra!r}")
    return OpenEqaQuestion(item["question_id"], item["question"], item["answer"], item["category"],
                           item["episode_history"], tuple(extra))


def _read_json(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"OpenEQA file {path} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def load_openeqa(root: str | Path) -> OpenEqaDataset:
    """All questions and the 184-question subset from a folder holding the two OpenEQA files."""
    root = Path(root)
    data = _read_json(root / MAIN_FILE)
    if not isinstance(data, list):
        raise ValueError(f"{root / MAIN_FILE}: expected a JSON list of questions")
    questions = [parse_question(item, f"{root / MAIN_FILE}[{i}]") for i, item in enumerate(data)]
    seen: set[str] = set()
    for i, q in enumerate(questions):
        if q.question_id in seen:
            raise ValueError(f"{root / MAIN_FILE}[{i}]: duplicate question_id {q.question_id!r}")
        seen.add(q.question_id)
    subset = _read_json(root / SUBSET_FILE)
    if not isinstance(subset, list) or not all(isinstance(s, str) for s in subset):
        raise ValueError(f"{root / SUBSET_FILE}: expected a JSON list of question ids")
    for i, qid in enumerate(subset):
        if qid not in seen:
            raise ValueError(f"{root / SUBSET_FILE}[{i}]: question id {qid!r} is not in {MAIN_FILE}")
    if len(set(subset)) != len(subset):
        raise ValueError(f"{root / SUBSET_FILE}: duplicate question ids")
    return OpenEqaDataset(questions, list(subset))
