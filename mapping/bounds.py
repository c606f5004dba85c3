"""Numeric bounds of config fields, checked in one place. A field states its bounds in its type,
`Annotated[float, Range(...)]` or one of the aliases below, and `check_bounds(config)` (called first by each
config's `__post_init__`) checks every numeric field: a number of its type (no bool, no string), finite,
within its range. Fields typed Optional may be None. Cross-field rules stay in the configs' own checks.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Optional


@dataclass(frozen=True)
class Range:
    """Inclusive (ge, le) and exclusive (gt, lt) bounds; None: unbounded on that side."""

    ge: Optional[float] = None
    gt: Optional[float] = None
    le: Optional[float] = None
    lt: Optional[float] = None

    def problem(self, value: float) -> Optional[str]:
        """What is wrong with `value` ("must be > 0"), None when it is within the range."""
        for bound, fails, word in ((self.ge, lambda b: value < b, ">="), (self.gt, lambda b: value <= b, ">"),
                                   (self.le, lambda b: value > b, "<="), (self.lt, lambda b: value >= b, "<")):
            if bound is not None and fails(bound):
                return f"must be {word} {bound:g}"
        return None


Positive = Annotated[float, Range(gt=0)]
NonNegative = Annotated[float, Range(ge=0)]
Probability = Annotated[float, Range(ge=0, le=1)]
PositiveInt = Annotated[int, Range(ge=1)]
NonNegativeInt = Annotated[int, Range(ge=0)]


@functools.lru_cache(maxsize=None)
def _numeric_fields(cls: type) -> dict[str, tuple[type, Optional[Range], bool]]:
    """name -> (int or float, its Range or None, whether None is allowed) for the numeric fields of `cls`."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = {}
    for f in dataclasses.fields(cls):
        tp, optional = hints[f.name], False
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                continue
            tp, optional = args[0], True
        rng = None
        if typing.get_origin(tp) is Annotated:
            tp, *extras = typing.get_args(tp)
            rng = next((e for e in extras if isinstance(e, Range)), None)
        if tp in (int, float):
            out[f.name] = (tp, rng, optional)
    return out


def check_bounds(config) -> None:
    """ValueError naming the first numeric field of dataclass `config` that is not a finite number of its type
    within its declared range."""
    name_of = type(config).__name__
    for name, (kind, rng, optional) in _numeric_fields(type(config)).items():
        value = getattr(config, name)
        if value is None and optional:
            continue
        wrong_kind = kind is int and not isinstance(value, int)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or wrong_kind:
            raise ValueError(f"{name_of}.{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name_of}.{name} must be finite, got {value}")
        problem = rng.problem(value) if rng is not None else None
        if problem:
            raise ValueError(f"{name_of}.{name} {problem}, got {value}")
