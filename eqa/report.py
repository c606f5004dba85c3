"""`eqa report`: a Markdown report with tables and PNG plots comparing benchmark runs side by side."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

from eqa.metrics import calibration_scores, success_curves, summarize
from eqa.records import read_records
from eqa.runner import episodes_dir, finished_ids, read_summary


def shared_vlm(summaries: list[dict], where: str) -> Optional[dict]:
    """The VLM record common to all episode `summaries` (None: they ran without a VLM). ValueError naming
    `where` when they come from several VLMs, e.g. a run resumed after the weights changed: its figures
    would mix two models."""
    vlms = {json.dumps(s.get("vlm"), sort_keys=True) for s in summaries}
    if len(vlms) > 1:
        raise ValueError(f"{where}: episodes come from {len(vlms)} different VLMs ({', '.join(sorted(vlms))}); "
                         f"rerun into a fresh --out")
    return summaries[0].get("vlm") if summaries else None


def load_run(folder: str | Path) -> tuple[str, list[dict], list[tuple[dict, list[dict]]]]:
    """(method name, summaries, [(summary, record rows)]) of one benchmark folder; its episodes must share
    one VLM."""
    folder = Path(folder)
    root = episodes_dir(folder)
    ids = sorted(finished_ids(folder))  # folder names as listed, never paths read from a summary
    if not ids:
        raise ValueError(f"{folder}: no finished episodes under {root}")
    summaries = [read_summary(root / i) for i in ids]
    for i, s in zip(ids, summaries):
        if s.get("episode_id") != i:
            raise ValueError(f"{root / i / 'summary.json'} names episode {s.get('episode_id')!r}, not its folder {i!r}")
    shared_vlm(summaries, str(folder))
    episodes = [(s, read_records(root / i / "record.jsonl")) for i, s in zip(ids, summaries)]
    name = summaries[0].get("method", folder.name)
    return f"{name} ({folder.name})", summaries, episodes


def load_runs(folders: list[str | Path]) -> tuple[str, list[dict], list[tuple[dict, list[dict]]]]:
    """`load_run` of several folders of one method and VLM, pooled (e.g. test sets of several dataset
    seeds). ValueError when they differ in method or VLM, or share an episode."""
    loaded = [load_run(f) for f in folders]
    if len(loaded) == 1:
        return loaded[0]
    where = f"cannot pool {', '.join(map(str, folders))}"
    summaries = [s for _, ss, _ in loaded for s in ss]
    shared_vlm(summaries, where)
    if len({s.get("method") for s in summaries}) > 1:
        raise ValueError(f"{where}: they differ in method")
    ids = [s["episode_id"] for s in summaries]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{where}: they share episodes")
    name = f"{summaries[0].get('method')} ({' + '.join(Path(f).name for f in folders)})"
    return name, summaries, [e for _, _, es in loaded for e in es]


def _pct(r: dict) -> str:
    if not r["n"]:
        return "n/a"
    lo, hi = r["ci95"]
    return f"{r['rate']:.1%} [{lo:.1%}, {hi:.1%}] (n={r['n']})"


def _num(x: float, fmt: str = ".2f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def write_report(folders: list[str | Path], out: str | Path, calib: str | Path | None = None) -> Path:
    """Write report.md (+ PNG plots) into `out`; returns the Markdown path. calib: a calibration-split
    benchmark folder (run without early stopping) whose scores add a conformal curve to each run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [load_run(f) for f in folders]
    metrics = [(name, summarize(s)) for name, s, _ in runs]
    lines = ["# Benchmark report", "", "Success: answered episodes whose answer is the true one, with 95 % Wilson "
             "intervals. Normalised steps: decisions / budget.", "",
             "| method | episodes | success | normalised steps | path (m) | VLM calls / ep | VLM s / ep | "
             "answerable view reached | steps to first answerable |", "|---|---|---|---|---|---|---|---|---|"]
    for name, m in metrics:
        lines.append(f"| {name} | {m['episodes']} | {_pct(m['success'])} | {_num(m['normalized_steps'])} | "
                     f"{_num(m['path_length_m'], '.1f')} | {_num(m['vlm_calls_per_episode'], '.1f')} | "
                     f"{_num(m['vlm_seconds_per_episode'], '.2f')} | {_pct(m['answerable_view_reached'])} | "
                     f"{_num(m['steps_to_first_answerable'], '.1f')} |")
    cats = sorted({c for _, m in metrics for c in m["success_by_category"]})
    if cats:
        lines += ["", "## Success by category", "", "| method | " + " | ".join(cats) + " |",
                  "|---|" + "---|" * len(cats)]
        for name, m in metrics:
            row = [(_pct(m["success_by_category"][c]) if c in m["success_by_category"] else "n/a") for c in cats]
            lines.append(f"| {name} | " + " | ".join(row) + " |")
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=110)
    plotted = False
    scores, calib_vlm = None, None
    if calib is not None:
        _, calib_summaries, calib_episodes = load_run(calib)
        scores, calib_vlm = calibration_scores(calib_episodes), calib_summaries[0].get("vlm")
    for name, summaries, episodes in runs:
        vlm = summaries[0].get("vlm") or {}
        same_vlm = calib_vlm is not None and (calib_vlm.get("model_id"), calib_vlm.get("prompt_version")) == (
            vlm.get("model_id"), vlm.get("prompt_version"))  # a calibration only holds for its own VLM
        curves = success_curves(episodes, scores if same_vlm else None, vlm.get("model_id", ""),
                                vlm.get("prompt_version", ""))
        for rule, points in curves.items():
            xs = [p["normalized_steps"] for p in points if p["n"]]
            ys = [p["rate"] for p in points if p["n"]]
            if xs:
                ax.plot(xs, ys, marker="o", markersize=3, label=f"{name}: {rule}")
                plotted = True
    if plotted:
        ax.set_xlabel("normalised steps (decisions / budget)")
        ax.set_ylabel("success rate")
        ax.set_title("Success vs normalised steps (stopping rules replayed offline)")
        ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(out / "success_vs_steps.png")
        lines += ["", "## Success versus normalised steps", "",
                  "Stopping rules replayed on the recorded per-step VLM outputs (runs made with stopping disabled "
                  "give the full curves).", "", "![success vs steps](success_vs_steps.png)"]
    else:
        lines += ["", "No run recorded per-step VLM outputs, so no success-versus-steps curve."]
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=110)
    for name, summaries, _ in runs:
        steps = sorted(s["first_answerable_step"] / s["budget"] for s in summaries
                       if s.get("first_answerable_step") is not None)
        if steps:
            ax.step(steps, [(i + 1) / len(summaries) for i in range(len(steps))], where="post", label=name)
    ax.set_xlabel("normalised steps")
    ax.set_ylabel("fraction of episodes with an answerable view")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "answerable_vs_steps.png")
    plt.close(fig)
    lines += ["", "## Reaching an answerable view", "", "![answerable vs steps](answerable_vs_steps.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
