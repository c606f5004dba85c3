"""Parallel, resumable episode runner (local processes or a Ray cluster).

Each job writes its episode folder under `<out>/episodes/.tmp-<id>-<pid>` and renames it to
`<out>/episodes/<id>` when finished, so a folder with that name is always complete: a killed run (even
kill -9) loses only the episodes in flight, and a restart skips every finished one. A finished folder keeps
its job's fingerprint (a hash of the job's payload) in `job.json`: a job whose payload changed under the
same id is refused, not silently kept. Job ids become folder names only when they pass `check_job_id`.
One run at a time holds `<out>/.lock`; worker processes exit when the run's process dies.

The worker is named by import path ("module:function") and called as
`worker(job_id, payload, method, folder) -> summary dict`.
"""
from __future__ import annotations

import collections
import fcntl
import hashlib
import importlib
import json
import multiprocessing as mp
import os
import re
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from tqdm import tqdm

SUMMARY = "summary.json"
JOB_FILE = "job.json"
LOCK_FILE = ".lock"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_job_id(job_id: object) -> str:
    """`job_id` if it can name a folder: 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or
    digit (no path separators, no '..', no absolute paths); ValueError otherwise."""
    if not isinstance(job_id, str) or not _SAFE_ID.fullmatch(job_id):
        raise ValueError(f"id {job_id!r} cannot name an episode folder: use 1 to 128 letters, digits, '.', '_' "
                         "or '-', starting with a letter or digit")
    return job_id


@dataclass(frozen=True)
class Job:
    job_id: str
    payload: dict

    def __post_init__(self) -> None:
        check_job_id(self.job_id)

    @property
    def fingerprint(self) -> str:
        """sha256 (16 hex digits) of the payload's canonical JSON: a changed job under the same id differs."""
        blob = json.dumps(self.payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def episodes_dir(out: str | os.PathLike) -> Path:
    return Path(out) / "episodes"


def finished_ids(out: str | os.PathLike) -> set[str]:
    """Ids of the episodes whose folders are complete."""
    root = episodes_dir(out)
    if not root.is_dir():
        return set()
    return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / SUMMARY).is_file()}


def read_summary(folder: Path) -> dict:
    """An episode folder's summary; ValueError naming the file when it is not a JSON object."""
    path = Path(folder) / SUMMARY
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err}); remove its folder to run the episode again") from None
    if not isinstance(summary, dict):
        raise ValueError(f"{path}: not a JSON object; remove its folder to run the episode again")
    return summary


def load_summaries(out: str | os.PathLike, ids: Optional[Iterable[str]] = None) -> list[dict]:
    """Summaries of the finished episodes (all, or those of `ids`), sorted by episode id."""
    root = episodes_dir(out)
    done = finished_ids(out)
    chosen = done if ids is None else done & set(ids)
    return [read_summary(root / i) for i in sorted(chosen)]


def _resolve(worker: str):
    module, _, name = worker.partition(":")
    return getattr(importlib.import_module(module), name)


def run_one(worker: str, job: Job, method: dict, out: str) -> dict:
    """Run one job into a temporary folder, then move it into place atomically."""
    import warnings

    warnings.filterwarnings("ignore", message="The TBB threading layer")
    root = episodes_dir(out)
    tmp = root / f".tmp-{job.job_id}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    summary = _resolve(worker)(job.job_id, job.payload, method, tmp)
    if not (tmp / SUMMARY).is_file():
        raise RuntimeError(f"worker {worker} wrote no {SUMMARY} for {job.job_id}")
    (tmp / JOB_FILE).write_text(json.dumps({"id": job.job_id, "fingerprint": job.fingerprint}))
    os.replace(tmp, root / job.job_id)
    return summary


def _run_one_star(args) -> dict:
    return run_one(*args)


def _exit_when_orphaned(parent: int) -> None:
    """Worker watchdog: end this process as soon as the run's process is gone (e.g. killed with -9), instead of
    finishing its episode and asking for more."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


def _init_worker(threads: int, parent: int) -> None:
    """Pool initializer: share the cores between workers instead of oversubscribing them; die with the run."""
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # read by torch when a VLM backend loads it
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


@contextmanager
def locked(out: str | os.PathLike) -> Iterator[None]:
    """Hold `<out>/.lock` (an exclusive flock, released when this process ends, however it ends); ValueError
    naming the holder when another run has it."""
    path = Path(out) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise ValueError(f"{out} is in use by another run ({holder}); wait for it to end or use another "
                             "--out") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)


def _check_finished(root: Path, jobs: list[Job], done: set[str]) -> None:
    """ValueError when a finished episode folder holds another job under the same id (a changed payload)."""
    changed = []
    for job in jobs:
        if job.job_id not in done:
            continue
        try:
            recorded = json.loads((root / job.job_id / JOB_FILE).read_text()).get("fingerprint")
        except (OSError, json.JSONDecodeError, AttributeError):
            recorded = None
        if recorded != job.fingerprint:
            changed.append(job.job_id)
    if changed:
        raise ValueError(f"{root} holds finished episodes whose job changed under the same id ({len(changed)}: "
                         f"{', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''}); remove those folders "
                         "or use another --out")


def run_jobs(jobs: Iterable[Job], worker: str, method: dict, out: str | os.PathLike, workers: int = 1,
             ray_address: Optional[str] = None, progress: bool = True) -> list[dict]:
    """Run every unfinished job; returns the summaries of the jobs' finished episodes (old and new)."""
    out = str(out)
    jobs = list(jobs)
    repeated = sorted(i for i, n in collections.Counter(j.job_id for j in jobs).items() if n > 1)
    if repeated:
        raise ValueError(f"job ids must be unique; repeated: {', '.join(repeated[:5])}")
    root = episodes_dir(out)
    root.mkdir(parents=True, exist_ok=True)
    with locked(out):
        for stale in root.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        done = finished_ids(out)
        _check_finished(root, jobs, done)
        todo = [j for j in jobs if j.job_id not in done]
        bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="episodes", unit="ep", disable=not progress,
                   dynamic_ncols=True)
        t0 = time.perf_counter()
        try:
            if ray_address is not None:
                _run_ray(todo, worker, method, out, ray_address, workers, bar)
            elif workers <= 1:
                for job in todo:
                    run_one(worker, job, method, out)
                    bar.update(1)
            else:
                ctx = mp.get_context("spawn")
                threads = max(1, (os.cpu_count() or 1) // workers)
                with ctx.Pool(workers, initializer=_init_worker, initargs=(threads, os.getpid())) as pool:
                    for _ in pool.imap_unordered(_run_one_star, [(worker, j, method, out) for j in todo]):
                        bar.update(1)
        finally:
            bar.close()
        elapsed = time.perf_counter() - t0
        (Path(out) / "runner.json").write_text(json.dumps(
            {"episodes": len(jobs), "ran": len(todo), "workers": workers, "ray": ray_address, "seconds": elapsed}))
    return load_summaries(out, [j.job_id for j in jobs])


def _run_ray(todo: list[Job], worker: str, method: dict, out: str, address: str, workers: int, bar) -> None:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if address == "local":
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(run_one)
        pending = [remote.remote(worker, job, method, out) for job in todo]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            ray.get(ready)
            bar.update(len(ready))
    finally:
        if started_here:
            ray.shutdown()
