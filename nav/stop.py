"""Stop policies: `should_stop(state) -> bool`, consulted once per decision, and
`stop_reason(state)`, the reason recorded when it said stop."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Protocol


@dataclass
class StopState:
    """What a stop policy may look at: decisions taken so far and the episode budget."""

    decisions: int
    budget: int
    exploration_done: bool = False


class StopPolicy(Protocol):
    name: str

    def should_stop(self, state: StopState) -> bool: ...

    def stop_reason(self, state: StopState) -> str: ...


def budget_or_explored(state: StopState, stop_when_done: bool) -> bool:
    """The budget is used up, or (if `stop_when_done`) nothing is left to explore."""
    return state.decisions >= state.budget or (stop_when_done and state.exploration_done)


def budget_stop_reason(state: StopState) -> str:
    """"budget" when the budget is used up, else "explored"."""
    return "budget" if state.decisions >= state.budget else "explored"


def decision_budget(floor_area_m2: Optional[float], default: int, factor: float = 3.0) -> int:
    """The reference budget ceil(factor * sqrt(floor area)) decisions, or `default` when the area is unknown."""
    if floor_area_m2 is None:
        if default < 1:
            raise ValueError(f"default budget must be >= 1, got {default}")
        return int(default)
    if not (math.isfinite(floor_area_m2) and floor_area_m2 > 0):
        raise ValueError(f"floor area must be a positive number of m^2, got {floor_area_m2}")
    return int(math.ceil(factor * math.sqrt(floor_area_m2)))


@dataclass
class FixedBudget:
    """Stop after the budget of decisions (or when nothing is left to explore, if `stop_when_done`)."""

    stop_when_done: bool = True
    name: str = "fixed-budget"

    def should_stop(self, state: StopState) -> bool:
        return budget_or_explored(state, self.stop_when_done)

    def stop_reason(self, state: StopState) -> str:
        return budget_stop_reason(state)
