"""HM-EQA (Ren et al. 2024) question set: `questions.csv` and `scene_init_poses.csv`.

questions.csv columns: scene (HM3D scene, e.g. "00004-VqCaAuuoeWk"), floor (int), question,
choices (a Python list literal of 4 strings, parsed with `ast.literal_eval`: 13 rows contain
apostrophes), question_formatted (the prompt "Q A) .. B) .. C) .. D) ... Answer:"), answer
(the correct letter A-D), label (the benchmark's question category: identification, count,
existence, state or location, as annotated; the annotation is noisy, e.g. "How many ..."
questions labelled "state", and is exposed as given).

Questions with fewer than four real options are padded with "(Do not choose this option)";
the padding is kept in place because the benchmark's prompt and answer letters count it.

scene_init_poses.csv columns: scene_floor ("<scene>_<floor>"), init_x, init_y, init_z (Habitat
y-up metres; init_y is the floor height), init_angle (radians about Habitat +y). Converted to
our frame by `sim.habitat_frame`. Running these questions needs HM3D and Habitat-Sim.
"""
from __future__ import annotations

import ast
import csv
import math
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from sim.habitat_frame import habitat_agent_pose, habitat_angle_to_yaw, habitat_to_world_point
from vlm.prompts import letter, letters

PAD = "(Do not choose this option)"
N_CHOICES = 4  # every HM-EQA question has four choices, A to D (padded)
LABELS = ("identification", "count", "existence", "state", "location")
QUESTION_COLUMNS = ("scene", "floor", "question", "choices", "question_formatted", "answer", "label")
POSE_COLUMNS = ("scene_floor", "init_x", "init_y", "init_z", "init_angle")


@dataclass(frozen=True)
class HmEqaStart:
    """A start pose: Habitat position (x, y, z) metres and angle (rad about +y), and ours."""

    scene_floor: str
    position_habitat: tuple[float, float, float]
    angle_habitat: float

    @property
    def position(self) -> tuple[float, float, float]:
        """World (x, y, z) metres, z up (z = the floor height)."""
        return tuple(float(v) for v in habitat_to_world_point(self.position_habitat))

    @property
    def yaw(self) -> float:
        """Base yaw about world +z, radians in [-pi, pi)."""
        return habitat_angle_to_yaw(self.angle_habitat)

    @property
    def xy_yaw(self) -> tuple[float, float, float]:
        x, y, _ = self.position
        return x, y, self.yaw

    def T_world_base(self) -> np.ndarray:
        return habitat_agent_pose(self.position_habitat, self.angle_habitat)


@dataclass(frozen=True)
class HmEqaQuestion:
    """One HM-EQA question (`row` is its 0-based data row in questions.csv)."""

    row: int
    scene: str
    floor: int
    question: str
    choices: tuple[str, ...]
    question_formatted: str
    answer: str  # letter
    label: str  # the annotated category (noisy, see module docstring)
    start: HmEqaStart

    @property
    def scene_floor(self) -> str:
        return f"{self.scene}_{self.floor}"

    @property
    def answer_index(self) -> int:
        return letters(N_CHOICES).index(self.answer)

    @property
    def answer_text(self) -> str:
        return self.choices[self.answer_index]

    @property
    def real_choices(self) -> list[int]:
        """Indices of the choices that are not padding."""
        return [i for i, c in enumerate(self.choices) if c != PAD]

    @property
    def answer_is_padding(self) -> bool:
        """True for a defective row whose correct letter points at the padding option."""
        return self.answer_text == PAD


@dataclass
class HmEqaDataset:
    questions: list[HmEqaQuestion]
    starts: dict[str, HmEqaStart]

    def __len__(self) -> int:
        return len(self.questions)

    def scenes(self) -> list[str]:
        return sorted({q.scene for q in self.questions})


def _require_columns(reader: csv.DictReader, wanted: tuple[str, ...], path: Path) -> None:
    have = reader.fieldnames or []
    missing = [c for c in wanted if c not in have]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; header is {have}")


def _float(value: str, path: Path, line: int, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{path}:{line}: field {name!r} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{path}:{line}: field {name!r} must be finite, got {value!r}")
    return v


def load_start_poses(path: str | Path) -> dict[str, HmEqaStart]:
    """scene_floor -> start pose from scene_init_poses.csv (duplicate keys are an error)."""
    path = Path(path)
    out: dict[str, HmEqaStart] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        _require_columns(reader, POSE_COLUMNS, path)
        for row in reader:
            line = reader.line_num
            key = (row["scene_floor"] or "").strip()
            if not key:
                raise ValueError(f"{path}:{line}: empty scene_floor")
            if key in out:
                raise ValueError(f"{path}:{line}: duplicate scene_floor {key!r}")
            pos = tuple(_float(row[c], path, line, c) for c in ("init_x", "init_y", "init_z"))
            out[key] = HmEqaStart(key, pos, _float(row["init_angle"], path, line, "init_angle"))
    return out


def _parse_choices(raw: str, path: Path, line: int) -> tuple[str, ...]:
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        raise ValueError(f"{path}:{line}: field 'choices' is not a Python list literal: {raw!r}") from None
    if not isinstance(value, list) or len(value) != N_CHOICES or not all(isinstance(c, str) for c in value):
        raise ValueError(f"{path}:{line}: field 'choices' must be a list of 4 strings, got {value!r}")
    return tuple(value)


def load_questions(path: str | Path, starts: dict[str, HmEqaStart]) -> list[HmEqaQuestion]:
    """Questions from questions.csv, each joined with its start pose by scene_floor."""
    path = Path(path)
    out = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        _require_columns(reader, QUESTION_COLUMNS, path)
        for i, row in enumerate(reader):
            line = reader.line_num
            choices = _parse_choices(row["choices"], path, line)
            answer = (row["answer"] or "").strip()
            if answer not in letters(N_CHOICES):
                raise ValueError(f"{path}:{line}: field 'answer' must be one of A-D, got {row['answer']!r}")
            try:
                floor = int(row["floor"])
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{line}: field 'floor' must be an integer, got {row['floor']!r}") from None
            label = (row["label"] or "").strip()
            if label not in LABELS:
                raise ValueError(f"{path}:{line}: field 'label' must be one of {LABELS}, got {row['label']!r}")
            key = f"{row['scene']}_{floor}"
            if key not in starts:
                raise ValueError(f"{path}:{line}: no start pose for scene_floor {key!r}")
            out.append(HmEqaQuestion(row=i, scene=row["scene"], floor=floor, question=row["question"], choices=choices,
                                     question_formatted=row["question_formatted"], answer=answer, label=label,
                                     start=starts[key]))
    return out


def load_hmeqa(root: str | Path) -> HmEqaDataset:
    """The HM-EQA set from a folder holding questions.csv and scene_init_poses.csv."""
    root = Path(root)
    for name in ("questions.csv", "scene_init_poses.csv"):
        if not (root / name).is_file():
            raise FileNotFoundError(f"HM-EQA file {root / name} not found")
    starts = load_start_poses(root / "scene_init_poses.csv")
    return HmEqaDataset(load_questions(root / "questions.csv", starts), starts)


def format_prompt(question: str, choices) -> str:
    """HM-EQA's prompt text: "Q A) c1 B) c2 C) c3 D) c4. Answer:" (reproduces `question_formatted`)."""
    return question + " " + " ".join(f"{letter(i)}) {c}" for i, c in enumerate(choices)) + ". Answer:"


def flagged(dataset: HmEqaDataset) -> list[HmEqaQuestion]:
    """Rows whose answer letter points at the padding option (a data defect, kept as given)."""
    return [q for q in dataset.questions if q.answer_is_padding]

