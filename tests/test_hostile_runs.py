"""Runs that share state, as found by the hostile probe (issue 27), kept fixed: one run per benchmark folder,
workers that die with their run, resume keyed by content as well as by id, and files replaced atomically."""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eqa.cli import main
from eqa import runner
from eqa.runner import finished_ids
from hostile import SMALL, questions_file

# Episodes that run for minutes (semantic, to a budget of hundreds of decisions): a kill lands mid-episode.
LONG = ["--method", "semantic", "--no-early-stop", "sim.camera.width=160", "sim.camera.height=120",
        "agent.budget_factor=100"]


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie waiting to be reaped does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _start_long_bench(data: Path, out: Path, workers: int) -> tuple[subprocess.Popen, list[int]]:
    """`eqa bench` in a child process; returns it with the pids of the processes running its first episodes
    (named by their `.tmp-<id>-<pid>` folders) once `workers` episodes are in flight."""
    cmd = [sys.executable, "-m", "eqa.cli", "bench", "--dataset", str(data), "--out", str(out),
           "--workers", str(workers), *LONG]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        tmp = list((out / "episodes").glob(".tmp-*")) if (out / "episodes").is_dir() else []
        if len(tmp) >= workers:
            return proc, [int(p.name.rsplit("-", 1)[1]) for p in tmp]
        assert proc.poll() is None, "the benchmark ended before its episodes started"
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("no episode started within 120 s")


@pytest.mark.integration
def test_a_second_bench_on_one_folder_is_refused_naming_the_first(tmp_path, capsys):
    data = questions_file(tmp_path / "q.jsonl", n=2)
    out = tmp_path / "run"
    first, _ = _start_long_bench(data, out, workers=1)
    try:
        in_flight = list((out / "episodes").glob(".tmp-*"))
        assert main(["bench", "--dataset", str(data), "--out", str(out), *LONG]) == 2
        assert f"{out} is in use by another run (pid {first.pid})" in capsys.readouterr().err
        assert all(p.is_dir() for p in in_flight)  # the first run's episode was left alone
        assert first.poll() is None
    finally:
        first.kill()
        first.wait()
    with runner.locked(out):  # a killed run leaves no stale lock
        pass


@pytest.mark.integration
def test_workers_stop_when_their_run_is_killed(tmp_path):
    data = questions_file(tmp_path / "q.jsonl", n=4)
    out = tmp_path / "run"
    parent, workers = _start_long_bench(data, out, workers=2)
    assert all(_alive(pid) for pid in workers)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 20  # an episode here runs for minutes: orphans would outlive this by far
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "worker processes ran on after their run was killed"
    assert finished_ids(out) == set()


@pytest.mark.integration
def test_a_changed_question_under_a_finished_id_is_refused(tmp_path, capsys):
    data = questions_file(tmp_path / "q.jsonl", n=1)
    out = tmp_path / "run"
    assert main(["bench", "--dataset", str(data), "--out", str(out)] + SMALL) == 0
    record = json.loads(data.read_text())
    record["question"] = "Is this the same question?"  # same id, other content
    data.write_text(json.dumps(record) + "\n")
    capsys.readouterr()
    assert main(["bench", "--dataset", str(data), "--out", str(out)] + SMALL) == 2
    assert "holds episodes of another dataset" in capsys.readouterr().err
    assert main(["bench", "--dataset", str(data), "--out", str(out), "--add-dataset"] + SMALL) == 2
    err = capsys.readouterr().err
    assert f"finished episodes whose job changed under the same id (1: {record['id']})" in err


@pytest.mark.integration
def test_another_dataset_is_refused_unless_added_and_counted_apart(tmp_path, capsys):
    first = questions_file(tmp_path / "a.jsonl", n=1, seed=7)
    second = questions_file(tmp_path / "b.jsonl", n=2, seed=8)
    out = tmp_path / "run"
    assert main(["bench", "--dataset", str(first), "--out", str(out)] + SMALL) == 0
    capsys.readouterr()
    assert main(["bench", "--dataset", str(second), "--out", str(out)] + SMALL) == 2
    assert f"holds episodes of another dataset ({first} (1 questions))" in capsys.readouterr().err
    assert len(finished_ids(out)) == 1
    assert main(["bench", "--dataset", str(second), "--out", str(out), "--add-dataset"] + SMALL) == 0
    assert capsys.readouterr().out.startswith("2/2 episodes finished")  # this dataset's episodes only
    assert len(finished_ids(out)) == 3
    held = json.loads((out / "datasets.json").read_text())
    assert [d["questions"] for d in held] == [1, 2]


@pytest.mark.parametrize("flag,value", [("--limit", "-1"), ("--limit", "0"), ("--workers", "0")])
def test_counts_below_one_are_refused(tmp_path, capsys, flag, value):
    data = questions_file(tmp_path / "q.jsonl", n=1)
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--dataset", str(data), "--out", str(tmp_path / "run"), flag, value])
    assert exit_.value.code == 2
    assert f"argument {flag}: must be >= 1, got {value}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def _file_size_limit(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.integration
def test_a_failed_dataset_write_keeps_the_old_file(tmp_path):
    old = questions_file(tmp_path / "q.jsonl", n=2)
    before = old.read_bytes()
    cmd = [sys.executable, "-m", "eqa.cli", "dataset", "make", "--split", "test", "--n", "4", "--seed", "3",
           "--out", str(old), "n_rooms=4", "questions_per_house=2"]
    done = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_file_size_limit(len(before) // 2),
                          env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")})
    assert done.returncode == 2
    assert "eqa dataset: error: [Errno 27] File too large" in done.stderr and "Traceback" not in done.stderr
    assert old.read_bytes() == before  # the disk filled up: the old dataset is still whole
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "numba") == ["q.jsonl"]  # no temporary left
