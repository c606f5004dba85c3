"""`eqa bench`: run a question dataset with a method, in parallel, resumably."""
from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

DATASETS = "datasets.json"


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="run a question dataset with a method (parallel, resumable)",
                            description="Run every question of DATASET with METHOD; one episode folder per question "
                                        "under OUT/episodes/, written atomically. Re-running the same command "
                                        "resumes: finished episodes are never re-run. A folder keeps its method config "
                                        "(method.json), VLM (vlm.json) and datasets (datasets.json): resuming it with "
                                        "another method or VLM is refused, with another dataset unless --add-dataset. "
                                        "One run at a time uses a folder.")
    parser.add_argument("--dataset", required=True,
                        help="questions: a JSON-lines file (`eqa dataset make`), hm-eqa (HM-EQA's questions on "
                             "HM3D scene files, with --scenes) or openeqa (OpenEQA's HM3D questions, open, answered "
                             "in free text, with --scenes and --frames)")
    parser.add_argument("--scenes", type=Path, default=None, metavar="DIR",
                        help="hm-eqa, openeqa: HM3D scenes laid out as HM3D's splits (DIR/<nnnnn>-<hash>/"
                             "<hash>.basis.glb)")
    parser.add_argument("--hm-eqa", type=Path, default=None, metavar="DIR",
                        help="hm-eqa: folder of questions.csv and scene_init_poses.csv (default: the copy shipped "
                             "with this package)")
    parser.add_argument("--frames", type=Path, default=None, metavar="DIR",
                        help="openeqa: OpenEQA's extracted frames (DIR/hm3d-v0/<episode>/00000.txt: the start "
                             "camera pose)")
    parser.add_argument("--open-eqa", type=Path, default=None, metavar="DIR",
                        help="openeqa: folder of open-eqa-v0.json and open-eqa-v0-184-questions.json (default: the "
                             "copy shipped with this package)")
    parser.add_argument("--subset", action="store_true", help="openeqa: only the 184-question subset")
    parser.add_argument("--up", default="auto", help="mesh scenes: the scene files' up axis (auto, y or z)")
    parser.add_argument("--shading", default="auto", help="mesh scenes: scene shading (auto, lambert or flat)")
    parser.add_argument("--start-snap", type=float, default=0.5, metavar="M",
                        help="mesh scenes: how far a start the robot's disc does not fit may move to free space "
                             "(default 0.5 m)")
    parser.add_argument("--method", default="fbe", help="method config YAML (default configs/fbe.yaml)")
    parser.add_argument("--out", type=Path, required=True, help="benchmark folder")
    parser.add_argument("--workers", type=positive_int, default=1, help="parallel worker processes (default 1)")
    parser.add_argument("--ray", metavar="ADDRESS", default=None,
                        help="run on a Ray cluster ('auto', 'ray://host:10001', or 'local' for a local Ray); "
                             "OUT must be on a filesystem every node shares")
    parser.add_argument("--limit", type=positive_int, default=None, help="only the first N questions")
    parser.add_argument("--add-dataset", action="store_true",
                        help="add this dataset's questions to a folder made from another dataset")
    parser.add_argument("--no-early-stop", action="store_true",
                        help="run every episode to its budget, recording every step (for calibration / sweeps)")
    parser.add_argument("overrides", nargs="*", help="method overrides like agent.planner.max_move_per_step=2")
    parser.set_defaults(func=run)


def dataset_entry(path: Path, jobs) -> dict:
    """What identifies a dataset: its file, its number of questions and a hash of all their contents (in
    order; --limit runs of one file share it)."""
    h = hashlib.sha256()
    for job in jobs:
        h.update(job.fingerprint.encode())
    return {"path": str(path), "questions": len(jobs), "sha256": h.hexdigest()[:16]}


def check_datasets(out: Path, entry: dict, add: bool) -> None:
    """Refuse a folder made from another dataset unless `add`; record this dataset in OUT/datasets.json."""
    path = out / DATASETS
    held = json.loads(path.read_text()) if path.is_file() else []
    if held and all(d["sha256"] != entry["sha256"] for d in held):
        if not add:
            names = ", ".join(f"{d['path']} ({d['questions']} questions)" for d in held)
            raise ValueError(f"{out} holds episodes of another dataset ({names}); use another --out, or "
                             "--add-dataset to add these questions to it")
    if all(d["sha256"] != entry["sha256"] for d in held):
        path.write_text(json.dumps(held + [entry], indent=1))


def locate(dataset: Path, message: str) -> str:
    """An episode's error ("question <id>: ...", e.g. a target its house lacks) prefixed with the dataset's file
    and line of that question; other messages unchanged."""
    from sim.questions import line_of

    found = re.match(r"question (\S+): ", message)
    line = line_of(dataset, found.group(1)) if found else None
    return f"{dataset}:{line}: {message}" if line else message


def hmeqa_jobs(args: argparse.Namespace) -> list:
    """The runner jobs of the HM-EQA questions whose scene files are under --scenes; says which are skipped."""
    from eqa.datasets.hmeqa import flagged, load_hmeqa
    from eqa.hmeqa_driver import BUNDLED, job_id, question_payload, scene_file
    from eqa.runner import Job
    from sim.mesh_world import MeshSceneConfig

    if args.scenes is None:
        raise ValueError("--dataset hm-eqa needs --scenes DIR (HM3D scene files)")
    if not args.scenes.is_dir():
        raise FileNotFoundError(f"--scenes {args.scenes} is not a folder")
    data = load_hmeqa(args.hm_eqa or BUNDLED)
    config = MeshSceneConfig(up=args.up, shading=args.shading, start_snap=args.start_snap)
    found = {scene: scene_file(args.scenes, scene) for scene in data.scenes()}
    missing = sorted(s for s, p in found.items() if p is None)
    jobs = [Job(job_id(q), question_payload(q, found[q.scene], config)) for q in data.questions
            if found[q.scene] is not None]
    if missing:
        skipped = sum(1 for q in data.questions if found[q.scene] is None)
        print(f"skipping {skipped} of {len(data)} HM-EQA questions: no scene file under {args.scenes} for "
              f"{len(missing)} of {len(found)} scenes (e.g. {missing[0]}: expected "
              f"{args.scenes}/{missing[0]}/{missing[0].split('-', 1)[-1]}.basis.glb)")
    bad = [q.row for q in flagged(data) if found[q.scene] is not None]
    if bad:
        print(f"rows {bad}: the answer letter points at a padding option; they run, flagged answer_is_padding")
    if not jobs:
        raise ValueError(f"no HM-EQA scene files found under {args.scenes}")
    return jobs


def stored_run(path: Path) -> dict:
    """A folder's method.json as this version writes it: settings added since it was written get their defaults
    (a folder from before a new setting stays resumable); an unreadable one is returned as read."""
    from eqa.sim_driver import SimRun

    held = json.loads(path.read_text())
    try:
        return json.loads(json.dumps(SimRun.from_dict(held).to_dict()))
    except (ValueError, TypeError):
        return held


def openeqa_jobs(args: argparse.Namespace) -> list:
    """The runner jobs of OpenEQA's HM3D questions whose scene file and start pose are found; says which are
    skipped."""
    from eqa.datasets.openeqa import load_openeqa
    from eqa.openeqa_driver import BUNDLED, first_pose_file, job_id, question_payload, scene_file
    from eqa.runner import Job
    from sim.mesh_world import MeshSceneConfig

    for flag, folder in (("--scenes", args.scenes), ("--frames", args.frames)):
        if folder is None:
            raise ValueError(f"--dataset openeqa needs {flag} DIR (HM3D scene files and OpenEQA's extracted frames)")
        if not folder.is_dir():
            raise FileNotFoundError(f"{flag} {folder} is not a folder")
    data = load_openeqa(args.open_eqa or BUNDLED)
    questions = data.subset() if args.subset else data.questions
    hm3d = [q for q in questions if q.source == "hm3d"]
    if len(hm3d) < len(questions):
        print(f"skipping {len(questions) - len(hm3d)} ScanNet questions: recorded scans, nothing to explore")
    config = MeshSceneConfig(up=args.up, shading=args.shading, start_snap=args.start_snap)
    scenes = {h: scene_file(args.scenes, h) for h in sorted({q.scene_id for q in hm3d})}
    no_scene = [q for q in hm3d if scenes[q.scene_id] is None]
    poses = {q.question_id: first_pose_file(args.frames, q) for q in hm3d if scenes[q.scene_id] is not None}
    no_pose = [q for q in hm3d if q.question_id in poses and poses[q.question_id] is None]
    if no_scene:
        missing = sorted({q.scene_id for q in no_scene})
        print(f"skipping {len(no_scene)} of {len(hm3d)} OpenEQA HM3D questions: no scene file under {args.scenes} "
              f"for {len(missing)} of {len(scenes)} scenes (e.g. {args.scenes}/<nnnnn>-{missing[0]}/"
              f"{missing[0]}.basis.glb)")
    if no_pose:
        print(f"skipping {len(no_pose)} OpenEQA HM3D questions: no start pose (e.g. "
              f"{args.frames / no_pose[0].episode_history / '00000.txt'}; extract the frames with poses)")
    jobs = [Job(job_id(q), question_payload(q, scenes[q.scene_id], poses[q.question_id], config))
            for q in hm3d if poses.get(q.question_id) is not None]
    if not jobs:
        raise ValueError(f"no OpenEQA HM3D question has both its scene under {args.scenes} and its start pose "
                         f"under {args.frames}")
    return jobs


def run(args: argparse.Namespace) -> int:
    from eqa.method import check_open_questions
    from eqa.runner import Job, check_job_id, run_jobs
    from eqa.sim_driver import load_sim_run
    from sim.questions import load_jsonl

    run_config = load_sim_run(args.method, args.overrides + (["early_stop=false"] if args.no_early_stop else []))
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; give a benchmark folder")
    hm_eqa = args.dataset == "hm-eqa"
    open_eqa = args.dataset == "openeqa"
    if open_eqa:
        check_open_questions(run_config.method)
        all_jobs = openeqa_jobs(args)
        worker, dataset = "eqa.openeqa_driver:openeqa_job", Path(args.open_eqa or "openeqa")
    elif hm_eqa:
        if run_config.method.vlm is None:
            raise ValueError(f"method {run_config.method.name!r} has no VLM: HM-EQA questions need one (e.g. "
                             "--method semantic with vlm.backend=hf or openai)")
        all_jobs = hmeqa_jobs(args)
        worker, dataset = "eqa.hmeqa_driver:hmeqa_job", Path(args.hm_eqa or "hm-eqa")
    else:
        dataset = Path(args.dataset)
        questions = load_jsonl(dataset, check=lambda q: check_job_id(q.id))
        all_jobs = [Job(q.id, q.to_json()) for q in questions]
        worker = "eqa.sim_driver:question_job"
    jobs = all_jobs[: args.limit]
    args.out.mkdir(parents=True, exist_ok=True)
    run_dict = json.loads(json.dumps(run_config.to_dict()))  # as stored
    saved = args.out / "method.json"
    if saved.is_file() and stored_run(saved) != run_dict:
        raise ValueError(f"{args.out} holds episodes of a different method config ({saved}); use another --out")
    check_datasets(args.out, dataset_entry(dataset, all_jobs), args.add_dataset)
    saved.write_text(json.dumps(run_dict, indent=1))
    try:
        summaries = run_jobs(jobs, worker, run_dict, args.out, workers=args.workers, ray_address=args.ray)
    except ValueError as err:
        raise ValueError(str(err) if (hm_eqa or open_eqa) else locate(dataset, str(err))) from None
    if open_eqa:
        from eqa.openeqa_driver import predictions_summary, write_predictions
        from eqa.runner import load_summaries
        print(predictions_summary(write_predictions(args.out, load_summaries(args.out))))
    print(f"{len(summaries)}/{len(jobs)} episodes finished in {args.out}/episodes "
          f"(method {run_config.method.name}); `eqa report {args.out}` summarises them")
    return 0
