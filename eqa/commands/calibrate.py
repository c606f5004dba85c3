"""`eqa calibrate`: a conformal threshold from calibration-split episodes run without early stopping."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("calibrate", help="conformal calibration from benchmark episodes (no early stop)",
                            description="Compute the conformal threshold q from the episodes of RECORDS (`eqa bench "
                                        "--no-early-stop` folders of calibration-split questions; several folders are "
                                        "pooled) and write it with eps, N, the VLM id, prompt version and method "
                                        "config hash.")
    parser.add_argument("--records", type=Path, nargs="+", required=True,
                        help="benchmark folder(s) (eqa bench --no-early-stop); several are pooled: same method "
                             "config and VLM, no shared episodes")
    parser.add_argument("--eps", type=float, required=True, help="miscoverage level, e.g. 0.1 for 90 %% coverage")
    parser.add_argument("--out", type=Path, required=True, help="calibration JSON to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from eqa.metrics import calibration_scores
    from eqa.report import load_runs
    from eqa.sim_driver import SimRun
    from vlm.conformal import calibrate

    if args.out.is_dir():
        raise ValueError(f"--out {args.out} is a directory; give the path of a calibration .json file")
    records = ", ".join(map(str, args.records))
    runs = []
    for folder in args.records:
        method_file = folder / "method.json"
        if not method_file.is_file():
            raise FileNotFoundError(f"{method_file} not found: --records must be `eqa bench` folders")
        runs.append(SimRun.from_dict(json.loads(method_file.read_text())))
    hashes = {r.exploration_hash() for r in runs}
    if len(hashes) > 1:
        raise ValueError(f"{records}: the folders ran with different method configs; calibrate them separately")
    _, summaries, episodes = load_runs(args.records)  # refuses several VLMs or shared episodes
    vlm = summaries[0].get("vlm")
    if vlm is None:
        raise ValueError(f"{records}: episodes ran without a VLM; nothing to calibrate")
    wrong = sorted({split_of(s) for s in summaries} & {"train", "test"})
    if wrong:
        raise ValueError(f"{records}: calibrate on calibration-split questions, not {wrong} ones")
    tuned = tuning_seeds_used(summaries)
    if tuned:
        print(f"warning: {records} hold questions of calib dataset seeds {tuned}, reserved for choosing settings "
              "(sim.questions.TUNING_SEEDS); a calibration from questions that settings were chosen on may cover "
              "less than 1 - eps on fresh questions. Shipped calibrations use CALIBRATION_SEEDS.")
    scores = calibration_scores(episodes)
    cal = calibrate(scores, args.eps, vlm["model_id"], vlm["prompt_version"], hashes.pop(),
                    method=runs[0].method.name, source=records, camera=runs[0].sim.camera.describe())
    cal.save(args.out)
    thr = "inf (too few episodes for this eps: no early stop)" if cal.threshold == float("inf") else f"{cal.threshold:.4f}"
    print(f"eps {cal.eps:g}: N = {cal.n} episodes, threshold q = {thr}; VLM {cal.vlm_id}, prompts "
          f"{cal.prompt_version}, config {cal.config_hash} -> {args.out}")
    return 0


def tuning_seeds_used(summaries: list[dict]) -> list[int]:
    """The calib-split tuning seeds (sim.questions.TUNING_SEEDS) of the summaries' procedural questions."""
    from sim.questions import TUNING_SEEDS, dataset_seed

    seeds = {dataset_seed("calib", int(s["seed"])) for s in summaries if split_of(s) == "calib"}
    return sorted(seeds & set(TUNING_SEEDS))


def split_of(summary: dict) -> str:
    """The split prefix of a procedural question id ('calib-1000003-0' -> 'calib')."""
    return str(summary.get("question_id", "")).split("-")[0]
