"""Benchmark folders written by an earlier version against folders of the same questions and methods written
now, timings aside.

Before the agent core was its own object (record schema 1: untyped rows, commit ca1f7c4 and earlier), the
fields compared are: decisions (action, reason, turn, plan with every frontier and score, outcome), poses,
stamps, VLM outputs (answer, relevance, every scored view's candidate points, values and located target),
prediction sets, ground-truth labels, and the summaries' stop steps and answers. Between two schema-2 folders,
every field of every record and summary is compared.

Usage: python bench/compare_records.py BEFORE_ROOT AFTER_ROOT
Each root holds benchmark folders (`eqa bench --out ROOT/NAME`) with the same names, e.g. made with
`git worktree add ../old ca1f7c4` and `eqa bench` run in both trees. Prints the differences per episode and
the count of identical episodes."""
import json
import sys
from pathlib import Path

from eqa.config import to_dict
from eqa.records import read_records

REASONS = {"confident (conformal)": "confident", "no answer left (conformal)": "no answer left",
           "confident (relevance)": "confident", "confident (max-prob)": "confident", "confident (oracle)": "confident"}


def view_dict(v, with_pose):
    d = {"candidates": [{"xy": list(c.xy), "status": c.status, "pixel": list(c.pixel) if c.pixel else None}
                        for c in v.candidates]}
    if v.skipped:
        return {"skipped": v.skipped, **({"xy": list(v.xy), "yaw": v.yaw} if with_pose else {})}
    for k in ("lsv", "gsv", "sv", "source"):
        if getattr(v, k) is not None:
            d[k] = getattr(v, k)
    if v.target is not None:
        d["target"] = {"pixel": list(v.target.pixel), "relevance": v.target.relevance,
                       "xy": list(v.target.xy) if v.target.xy else None, "approach": v.target.approach}
    if with_pose:
        d.update(xy=list(v.xy), yaw=v.yaw)
    return d


def old_view(d):
    d = dict(d)
    if "candidates" not in d and "skipped" not in d:
        d["candidates"] = []
    return d


TIMINGS = {"timings", "vlm_s", "vlm_seconds", "wall_time_s"}


def without_timings(value):
    """`value` (parsed JSON) without its wall-clock fields, which differ between any two runs."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def compare_same_schema(old_dir, new_dir):
    """Differences between two schema-2 episode folders: every record row and summary field but timings."""
    problems = []
    old_rows, new_rows = ([json.loads(ln) for ln in (d / "record.jsonl").read_text().splitlines() if ln.strip()]
                          for d in (old_dir, new_dir))
    if len(old_rows) != len(new_rows):
        return [f"rows {len(old_rows)} != {len(new_rows)}"]
    for o, n in zip(old_rows, new_rows):
        if without_timings(o) != without_timings(n):
            keys = sorted(k for k in set(o) | set(n) if without_timings(o.get(k)) != without_timings(n.get(k)))
            problems.append(f"step {o.get('step')}: {keys}")
    so, sn = (without_timings(json.loads((d / "summary.json").read_text())) for d in (old_dir, new_dir))
    problems += [f"summary {k}: {so.get(k)} != {sn.get(k)}" for k in sorted(set(so) | set(sn))
                 if so.get(k) != sn.get(k)]
    return problems


def compare_episode(old_dir, new_dir):
    first = json.loads((old_dir / "record.jsonl").read_text().split("\n", 1)[0])
    if first.get("schema") == "confident-eqa-record":
        return compare_same_schema(old_dir, new_dir)
    problems = []
    old_rows = [json.loads(ln) for ln in (old_dir / "record.jsonl").read_text().splitlines() if ln.strip()]
    new = read_records(new_dir / "record.jsonl")
    if len(old_rows) != len(new):
        return [f"rows {len(old_rows)} != {len(new)}"]
    for o, n in zip(old_rows, new):
        where = f"step {o['step']}"
        checks = {
            "step": (o["step"], n.step), "stamp": (o["stamp"], n.stamp), "pose": (o["pose"], list(n.pose)),
            "budget": (o["budget"], n.budget), "action": (o["action"], n.action.value),
            "reason": (REASONS.get(o["reason"], o["reason"]), n.reason.value if n.reason else ""),
            "turn": (o.get("turn"), n.turn),
            "moved": (o.get("moved"), n.outcome.moved if n.outcome else None),
            "blocked": (o.get("blocked"), n.outcome.blocked if n.outcome else None),
            "reached": (o.get("reached"), n.outcome.reached if n.outcome else None),
            "plan": (o.get("plan"), json.loads(json.dumps(to_dict(n.plan))) if n.plan else None),
            "p_answer": (o.get("p_answer"), n.p_answer), "relevance": (o.get("relevance"), n.relevance),
            "conformal": (o.get("conformal"), json.loads(json.dumps(to_dict(n.conformal))) if n.conformal else None),
            "answerable": (o.get("answerable"), n.truth.answerable),
        }
        if "semantic" in o:
            checks["semantic"] = (old_view(o["semantic"]), view_dict(n.newest, False))
            checks["semantic_earlier"] = ([old_view(e) for e in o.get("semantic_earlier", [])],
                                          [view_dict(v, True) for v in n.earlier_views])
        for k, (a, b) in checks.items():
            if a != b:
                problems.append(f"{where} {k}: {str(a)[:200]} != {str(b)[:200]}")
    so = json.loads((old_dir / "summary.json").read_text())
    sn = json.loads((new_dir / "summary.json").read_text())
    for k in ("decisions", "budget", "answer", "answer_rule", "answer_step", "final_set", "success", "truth_in_set",
              "first_answerable_step", "vlm_calls", "path_length_m", "stopped_confident", "truth", "question_id"):
        if so.get(k) != sn.get(k):
            problems.append(f"summary {k}: {so.get(k)} != {sn.get(k)}")
    if REASONS.get(so["stop_reason"], so["stop_reason"]) != sn["stop_reason"]:
        problems.append(f"summary stop_reason {so['stop_reason']} != {sn['stop_reason']}")
    return problems


def main():
    before, after = Path(sys.argv[1]), Path(sys.argv[2])
    total = bad = rows = 0
    for run in sorted(p for p in before.iterdir() if p.is_dir()):
        eps = sorted(p for p in (run / "episodes").iterdir() if p.is_dir() and not p.name.startswith("."))
        run_bad = 0
        for ep in eps:
            new_ep = after / run.name / "episodes" / ep.name
            problems = compare_episode(ep, new_ep) if new_ep.is_dir() else ["missing"]
            total += 1
            rows += sum(1 for ln in (ep / "record.jsonl").read_text().splitlines()
                        if ln.strip() and not ln.startswith('{"schema"'))
            if problems:
                bad += 1
                run_bad += 1
                print(f"{run.name}/{ep.name}: {len(problems)} differences, first: {problems[:3]}")
        print(f"{run.name}: {len(eps) - run_bad}/{len(eps)} episodes identical")
    print(f"TOTAL: {total - bad}/{total} episodes identical ({rows} decision records compared)")


if __name__ == "__main__":
    main()
