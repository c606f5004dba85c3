"""Step-by-step narration of a question episode from its record rows (what the robot sees, believes
and decides), for `eqa demo` and `eqa run`."""
from __future__ import annotations

import math
from typing import Callable, TextIO


def letter(index: int) -> str:
    """Choice index -> its letter (0 -> "A")."""
    return chr(65 + int(index))


def choice_text(choices, index) -> str:
    """"A) Black" for a choice index, "none" for None."""
    return f"{letter(index)}) {choices[index]}" if index is not None else "none"


def letters(indices) -> str:
    """A set of choice indices as "{A, C}"."""
    return "{" + ", ".join(letter(i) for i in indices) + "}"


def _semantic_scores(sem: dict) -> str:
    """One view's direction scores and worth-exploring probability."""
    return "directions " + " ".join(f"{v:.2f}" for v in sem["lsv"]) + f", worth exploring {sem['gsv']:.2f}"


def _earlier_view_name(view: dict, row: dict) -> str:
    """"look-around 90 deg" for the first decision's earlier views, else "on the way at (x, y)"."""
    if row["step"] == 0 or "xy" not in view:
        return f"look-around {math.degrees(view['yaw']):.0f} deg"
    return f"on the way at ({view['xy'][0]:.1f}, {view['xy'][1]:.1f})"


def describe_row(row: dict, budget: int) -> list[str]:
    """Two or three lines about one decision row."""
    head = f"step {row['step']:>2}/{budget}"
    sees = []
    if row.get("relevance") is not None:
        probs = " ".join(f"{letter(i)} {p:.2f}" for i, p in enumerate(row["p_answer"]))
        sees.append(f"relevance {row['relevance']:.2f}, P(answer) {probs}")
    sem = row.get("semantic") or {}
    if sem.get("skipped"):
        sees.append(f"view skipped ({sem['skipped']})")
    elif sem.get("sv"):
        sees.append(_semantic_scores(sem))
    for e in row.get("semantic_earlier", ()):
        if e.get("sv"):
            sees.append(f"{_earlier_view_name(e, row)}: {_semantic_scores(e)}")
    if "answerable" in row:
        sees.append("[sim: target " + ("in view]" if row["answerable"] else "not in view]"))
    lines = [f"{head}  sees: " + ("; ".join(sees) if sees else "-")]
    conf = row.get("conformal")
    if conf:
        lines.append(f"{'':9}  believes: prediction set {letters(conf['set'])} (this view {letters(conf['step_set'])})")
    act = row.get("action", "")
    if act == "move":
        plan = row.get("plan") or {}
        goal, target = plan.get("goal"), plan.get("approach")
        where = f" toward ({goal[0]:.1f}, {goal[1]:.1f})" if goal else ""
        why = f" to look closer at the target located at ({target[0]:.1f}, {target[1]:.1f})" if target else ""
        lines.append(f"{'':9}  decides: move {row.get('moved', 0.0):.1f} m{where}{why}")
    elif act == "turn":
        lines.append(f"{'':9}  decides: turn {math.degrees(row.get('turn', 0.0)):.0f} deg ({row.get('reason', '')})")
    elif act == "stop":
        lines.append(f"{'':9}  decides: stop ({row.get('reason') or 'confident'})")
    return lines


def narrator(out: TextIO) -> Callable[[dict], None]:
    """on_row callback printing each row as it is written."""

    def on_row(row: dict) -> None:
        for line in describe_row(row, row.get("budget", 0)):
            print(line, file=out, flush=True)

    return on_row
