"""Bad inputs found by the hostile probe (issue 27), kept fixed: each ends in one `eqa <command>: error:` line
naming the file, line and field, with exit status 2, never in a traceback or an unnamed error."""
from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from eqa.cli import main
from hostile import SMALL, questions_file

CALIBRATIONS = Path(__file__).resolve().parents[1] / "vlm" / "calibrations"


def _error(capsys) -> str:
    """The one error line the command printed on stderr (progress bars aside)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("eqa ")]
    assert len(lines) == 1, lines
    return lines[0]


def _bench(data, out, *extra) -> int:
    return main(["bench", "--dataset", str(data), "--out", str(out), *extra, *SMALL])


def _set(field, value, line=2):
    def edit(records):
        records[line - 1][field] = value
    return edit


@pytest.mark.parametrize("field,value,message", [
    ("choices", "A, B", "choices must be a list of strings, got 'A, B'"),
    ("answer_index", "1", "answer_index must be an integer, got '1'"),
    ("target_ids", [1, "2"], "target_ids must be a list of integers"),
    ("answerable_viewpoints", [[float("nan"), 0.0, 0.0]], "answerable_viewpoints and floor_area_m2 must be finite"),
    ("floor_area_m2", float("nan"), "answerable_viewpoints and floor_area_m2 must be finite"),
])
def test_question_fields_of_the_wrong_kind_name_file_line_and_field(tmp_path, capsys, field, value, message):
    data = questions_file(tmp_path / "q.jsonl", edit=_set(field, value))
    assert _bench(data, tmp_path / "run") == 2
    line = _error(capsys)
    assert line.startswith(f"eqa bench: error: {data}:2: question ") and message in line


def test_repeated_question_ids_are_named(tmp_path, capsys):
    def edit(records):
        records[1]["id"] = records[0]["id"]
    data = questions_file(tmp_path / "q.jsonl", edit=edit)
    first = json.loads(data.read_text().splitlines()[0])["id"]
    assert _bench(data, tmp_path / "run") == 2
    assert _error(capsys) == f"eqa bench: error: {data}:2: question id {first!r} repeats line 1"


def test_a_dataset_that_is_not_utf8_names_its_line(tmp_path, capsys):
    data = questions_file(tmp_path / "q.jsonl")
    lines = data.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"question":"', b'"question":"caf\xe9 ', 1)  # Latin-1, not UTF-8
    data.write_bytes(b"".join(lines))
    assert _bench(data, tmp_path / "run") == 2
    assert _error(capsys) == f"eqa bench: error: {data}:2: not UTF-8 text"


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_an_empty_dataset_is_an_error(tmp_path, capsys, text):
    data = tmp_path / "q.jsonl"
    data.write_text(text)
    assert _bench(data, tmp_path / "run") == 2
    assert _error(capsys) == f"eqa bench: error: {data}: no questions"


@pytest.mark.integration
def test_targets_missing_from_the_house_name_the_question_line(tmp_path, capsys):
    data = questions_file(tmp_path / "q.jsonl", edit=_set("target_ids", [99999], line=1))
    qid = json.loads(data.read_text().splitlines()[0])["id"]
    assert _bench(data, tmp_path / "run") == 2
    assert _error(capsys).startswith(f"eqa bench: error: {data}:1: question {qid}: target ids [99999] are neither "
                                     "objects nor room floors of house")


def test_a_truncated_summary_is_named_by_report(tmp_path, capsys):
    folder = tmp_path / "run" / "episodes" / "q1"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text('{"episode_id": "q1", "succ')
    assert main(["report", str(tmp_path / "run")]) == 2
    line = _error(capsys)
    assert line.startswith(f"eqa report: error: {folder / 'summary.json'}: not valid JSON")
    assert line.endswith("remove its folder to run the episode again")


@pytest.mark.parametrize("field,value,message", [
    ("n", "400", "field 'n' must be an integer, got str '400'"),
    ("threshold", "1.7", "field 'threshold' must be a number or null, got str '1.7'"),
    ("vlm_id", 3, "field 'vlm_id' must be a string, got int 3"),
])
def test_calibration_fields_of_the_wrong_type_are_named(tmp_path, capsys, field, value, message):
    from vlm import conformal

    data = json.loads((CALIBRATIONS / "semantic-eps0.1.json").read_text())
    data[field] = value
    if hasattr(conformal, "_checksum"):
        data["checksum"] = conformal._checksum(data)  # a consistent file, only of the wrong type
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(data))
    questions = questions_file(tmp_path / "q.jsonl", n=1)
    assert _bench(questions, tmp_path / "run", "--method", "semantic", "stop.policy=conformal",
                  f"stop.calibration={path}") == 2
    assert _error(capsys) == f"eqa bench: error: {path}: {message}"


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_unreadable_weights_files_are_named(tmp_path, capsys, damage):
    from vlm.backends.builtin import WEIGHTS_FILE

    weights = tmp_path / "builtin_vlm.pt"
    shutil.copy(WEIGHTS_FILE.parent / "MODEL_CARD.md", tmp_path / "MODEL_CARD.md")
    raw = WEIGHTS_FILE.read_bytes()
    weights.write_bytes(raw[: len(raw) // 3] if damage == "truncated" else bytes(range(256)) * 400)
    questions = questions_file(tmp_path / "q.jsonl", n=1)
    assert _bench(questions, tmp_path / "run", "--method", "fbe-vlm", f"vlm.builtin.weights={weights}") == 2
    assert _error(capsys).startswith(f"eqa bench: error: {weights}: not a readable builtin checkpoint, truncated or "
                                     "not written by `eqa train-vlm`")


def test_out_pointing_at_a_directory_is_refused(tmp_path, capsys):
    folder = tmp_path / "taken.jsonl"
    folder.mkdir()
    assert main(["dataset", "make", "--split", "test", "--n", "1", "--out", str(folder)]) == 2
    assert _error(capsys) == f"eqa dataset: error: --out {folder} is a directory; give the path of a .jsonl file"
    assert main(["calibrate", "--records", str(tmp_path), "--eps", "0.1", "--out", str(folder)]) == 2
    assert _error(capsys) == (f"eqa calibrate: error: --out {folder} is a directory; give the path of a calibration "
                              ".json file")
    assert list(folder.iterdir()) == []


def test_a_port_in_use_is_one_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve-vlm", "--backend", "builtin", "--port", str(port)]) == 2
    assert _error(capsys) == (f"eqa serve-vlm: error: port {port} on 127.0.0.1 is already in use; choose another "
                              "--port")


def test_yaml_syntax_errors_name_file_and_line(tmp_path, capsys):
    config = tmp_path / "mine.yaml"
    config.write_text("name: mine\nagent:\n  budget_factor: [1, 2\n")
    questions = questions_file(tmp_path / "q.jsonl", n=1)
    assert _bench(questions, tmp_path / "run", "--method", str(config)) == 2
    assert _error(capsys).startswith(f"eqa bench: error: {config}:4: YAML syntax error: expected ',' or ']'")
    assert _bench(questions, tmp_path / "run", "agent.budget_factor=[1") == 2
    assert _error(capsys).startswith("eqa bench: error: override 'agent.budget_factor=[1':1: YAML syntax error")
