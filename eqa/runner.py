"""Parallel, resumable episode runner (local processes or a Ray cluster).

Each job writes its episode folder under `<out>/episodes/.tmp-<id>` and renames it to
`<out>/episodes/<id>` when finished, so a folder with that name is always complete: a
killed run (even kill -9) loses only the episodes in flight, and a restart skips every
finished one. The worker is named by import path ("module:function") and called as
`worker(job_id, payload, method, folder) -> summary dict`.
"""
from __future__ import annotations

import importlib
import json
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from tqdm import tqdm

SUMMARY = "summary.json"


@dataclass(frozen=True)
class Job:
    job_id: str
    payload: dict


def episodes_dir(out: str | os.PathLike) -> Path:
    return Path(out) / "episodes"


def finished_ids(out: str | os.PathLike) -> set[str]:
    """Ids of the episodes whose folders are complete."""
    root = episodes_dir(out)
    if not root.is_dir():
        return set()
    return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / SUMMARY).is_file()}


def load_summaries(out: str | os.PathLike) -> list[dict]:
    """Summaries of all finished episodes, sorted by episode id."""
    root = episodes_dir(out)
    return [json.loads((root / i / SUMMARY).read_text()) for i in sorted(finished_ids(out))]


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
    os.replace(tmp, root / job.job_id)
    return summary


def _run_one_star(args) -> dict:
    return run_one(*args)


def _init_worker(threads: int) -> None:
    """Pool initializer: share the cores between workers instead of oversubscribing them."""
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # read by torch when a VLM backend loads it


def run_jobs(jobs: Iterable[Job], worker: str, method: dict, out: str | os.PathLike, workers: int = 1,
             ray_address: Optional[str] = None, progress: bool = True) -> list[dict]:
    """Run every unfinished job; returns the summaries of all finished episodes (old and new)."""
    out = str(out)
    root = episodes_dir(out)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    jobs = list(jobs)
    ids = [j.job_id for j in jobs]
    if len(set(ids)) != len(ids):
        raise ValueError("job ids must be unique")
    done = finished_ids(out)
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
            with ctx.Pool(workers, initializer=_init_worker, initargs=(threads,)) as pool:
                for _ in pool.imap_unordered(_run_one_star, [(worker, j, method, out) for j in todo]):
                    bar.update(1)
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0
    (Path(out) / "runner.json").write_text(json.dumps(
        {"episodes": len(jobs), "ran": len(todo), "workers": workers, "ray": ray_address, "seconds": elapsed}))
    return load_summaries(out)


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
