"""Step-by-step narration of an episode from its step records (what the robot sees, believes and decides),
for `eqa demo` and `eqa run`."""
from __future__ import annotations

import math
from typing import Callable, TextIO

from eqa.records import Action, StepRecord, ViewRecord
from vlm.prompts import letter


def choice_text(choices, index) -> str:
    """"A) Black" for a choice index, "none" for None."""
    return f"{letter(index)}) {choices[index]}" if index is not None else "none"


def letters(indices) -> str:
    """A set of choice indices as "{A, C}"."""
    return "{" + ", ".join(letter(i) for i in indices) + "}"


def _semantic_scores(view: ViewRecord) -> str:
    """One view's direction scores and worth-exploring probability."""
    return "directions " + " ".join(f"{v:.2f}" for v in view.lsv) + f", worth exploring {view.gsv:.2f}"


def _earlier_view_name(view: ViewRecord, record: StepRecord) -> str:
    """"look-around 90 deg" for the first decision's earlier views, else "on the way at (x, y)"."""
    if record.step == 0:
        return f"look-around {math.degrees(view.yaw):.0f} deg"
    return f"on the way at ({view.xy[0]:.1f}, {view.xy[1]:.1f})"


def describe(record: StepRecord) -> list[str]:
    """Two or three lines about one decision."""
    head = f"step {record.step:>2}/{record.budget}"
    sees = []
    newest = record.newest
    if record.relevance is not None:
        probs = " ".join(f"{letter(i)} {p:.2f}" for i, p in enumerate(record.p_answer or ()))
        sees.append(f"relevance {record.relevance:.2f}" + (f", P(answer) {probs}" if probs else ""))
    if newest is not None and newest.skipped:
        sees.append(f"view skipped ({newest.skipped})")
    elif newest is not None and newest.sv:
        sees.append(_semantic_scores(newest))
    for view in record.earlier_views:
        if view.sv:
            sees.append(f"{_earlier_view_name(view, record)}: {_semantic_scores(view)}")
    if record.truth.answerable is not None:
        sees.append("[sim: target " + ("in view]" if record.truth.answerable else "not in view]"))
    lines = [f"{head}  sees: " + ("; ".join(sees) if sees else "-")]
    conf = record.conformal
    if conf:
        lines.append(f"{'':9}  believes: prediction set {letters(conf.set)} (this view {letters(conf.step_set)})")
    if record.action == Action.MOVE:
        plan = record.plan
        goal, target = plan.goal, plan.approach
        where = f" toward ({goal[0]:.1f}, {goal[1]:.1f})" if goal else ""
        why = f" to look closer at the target located at ({target[0]:.1f}, {target[1]:.1f})" if target else ""
        moved = record.outcome.moved if record.outcome is not None else 0.0
        lines.append(f"{'':9}  decides: move {moved:.1f} m{where}{why}")
    elif record.action == Action.TURN:
        lines.append(f"{'':9}  decides: turn {math.degrees(record.turn):.0f} deg ({record.reason})")
    elif record.action == Action.STOP:
        lines.append(f"{'':9}  decides: stop ({record.reason})")
    return lines


def narrator(out: TextIO) -> Callable[[StepRecord], None]:
    """on_record callback printing each record as it is written."""

    def on_record(record: StepRecord) -> None:
        for line in describe(record):
            print(line, file=out, flush=True)

    return on_record
