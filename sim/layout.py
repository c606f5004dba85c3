"""Floor-plan layout: binary space partition of a rectangular footprint into rooms,
room-kind assignment, adjacency, doors and walls. Coordinates are wall centre lines, metres.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.config import HouseConfig

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 (wall centre lines)

# Bigger rooms get kinds earlier in this list.
KIND_SIZE_ORDER = ("living room", "kitchen", "dining room", "bedroom", "office", "hallway", "bathroom", "laundry")
EXTRA_KINDS = ("bedroom", "dining room", "office", "laundry", "bathroom", "bedroom", "office")


@dataclass
class DoorSpec:
    """A door opening between rooms a and b, centred at `centre` on a wall line."""

    a: int
    b: int
    axis: str  # "x": wall is vertical (x = const), "y": wall is horizontal (y = const)
    line: float  # the constant coordinate of the wall line
    centre: float  # position along the wall
    tree: bool  # part of the spanning tree (must stay passable)


@dataclass
class Layout:
    rects: list[Rect]
    kinds: list[str]
    splits: list[tuple[str, float, float, float]]  # (axis, line, s0, s1) internal wall segments
    footprint: Rect
    doors: list[DoorSpec]


def _snap(v: float) -> float:
    return round(v * 10.0) / 10.0


def _split_once(rect: Rect, rng: np.random.Generator, min_side: float):
    x0, y0, x1, y1 = rect
    w, h = x1 - x0, y1 - y0
    along_x = w >= h  # split the longer side
    length = w if along_x else h
    if length < 2 * min_side:
        return None
    lo, hi = min_side, length - min_side
    cut = _snap(rng.uniform(max(lo, 0.35 * length), min(hi, 0.65 * length)))
    cut = min(max(cut, np.ceil(lo * 10.0) / 10.0), np.floor(hi * 10.0) / 10.0)
    if along_x:
        s = x0 + cut
        return (x0, y0, s, y1), (s, y0, x1, y1), ("x", s, y0, y1)
    s = y0 + cut
    return (x0, y0, x1, s), (x0, s, x1, y1), ("y", s, x0, x1)


def _shared_segment(a: Rect, b: Rect, eps: float = 1e-6):
    """(axis, line, s0, s1) of the wall a and b share, or None."""
    for axis, (a_lo, a_hi, b_lo, b_hi, a_s0, a_s1, b_s0, b_s1) in (
        ("x", (a[0], a[2], b[0], b[2], a[1], a[3], b[1], b[3])),
        ("y", (a[1], a[3], b[1], b[3], a[0], a[2], b[0], b[2])),
    ):
        for line_a, line_b in ((a_hi, b_lo), (a_lo, b_hi)):
            if abs(line_a - line_b) < eps:
                s0, s1 = max(a_s0, b_s0), min(a_s1, b_s1)
                if s1 > s0:
                    return axis, line_a, s0, s1
    return None


def make_layout(rng: np.random.Generator, n_rooms: int, cfg: HouseConfig, max_tries: int = 50) -> Layout:
    """A connected floor plan with `n_rooms` rectangular rooms (deterministic given rng state)."""
    min_door_span = cfg.door_width + 0.7
    for _ in range(max_tries):
        area = n_rooms * rng.uniform(11.0, 17.0)
        aspect = rng.uniform(1.0, 1.6)
        width, height = _snap(np.sqrt(area * aspect)), _snap(np.sqrt(area / aspect))
        footprint = (0.0, 0.0, width, height)
        regions: list[Rect] = []
        splits: list[tuple[str, float, float, float]] = []
        hallway = None
        if n_rooms >= 6 and rng.uniform() < 0.5 and height >= 2 * cfg.min_room_side + 1.6:
            # at most what leaves both sides min_room_side (no effect on a house that generated before: such
            # a draw used to fail)
            hw = min(_snap(rng.uniform(1.5, 1.9)), height - 2 * cfg.min_room_side)
            hy = _snap(rng.uniform(cfg.min_room_side, height - cfg.min_room_side - hw))
            hallway = (0.0, hy, width, hy + hw)
            regions = [(0.0, 0.0, width, hy), (0.0, hy + hw, width, height)]
            splits = [("y", hy, 0.0, width), ("y", hy + hw, 0.0, width)]
        else:
            regions = [footprint]
        target = n_rooms - (1 if hallway else 0)
        failed = False
        while len(regions) < target:
            order = sorted(range(len(regions)), key=lambda i: -(regions[i][2] - regions[i][0]) * (regions[i][3] - regions[i][1]))
            for i in order:
                result = _split_once(regions[i], rng, cfg.min_room_side)
                if result is not None:
                    a, b, seg = result
                    regions[i:i + 1] = [a, b]
                    splits.append(seg)
                    break
            else:
                failed = True
                break
        if failed:
            continue
        rects = regions + ([hallway] if hallway else [])
        kinds = _assign_kinds(rects, hallway is not None, rng, cfg)
        if kinds is None:
            continue
        doors = _make_doors(rects, rng, cfg, min_door_span)
        if doors is None:
            continue
        return Layout(rects=rects, kinds=kinds, splits=splits, footprint=footprint, doors=doors)
    raise RuntimeError(f"could not lay out a connected house with {n_rooms} rooms")


def _assign_kinds(rects: list[Rect], has_hallway: bool, rng: np.random.Generator, cfg: HouseConfig):
    n = len(rects) - (1 if has_hallway else 0)
    wanted = [k for k in ("living room", "kitchen", "bedroom", "bathroom") if k in cfg.room_kinds]
    extras = [k for k in EXTRA_KINDS if k in cfg.room_kinds] or list(cfg.room_kinds)
    extras = [k for k in extras if k != "hallway"] or list(cfg.room_kinds)
    while len(wanted) < n:
        wanted.append(extras[int(rng.integers(len(extras)))])
    wanted = wanted[:n]
    wanted.sort(key=lambda k: KIND_SIZE_ORDER.index(k))
    areas = [(r[2] - r[0]) * (r[3] - r[1]) for r in rects[:n]]
    order = np.argsort(-np.asarray(areas), kind="stable")
    kinds = [""] * n
    for kind, idx in zip(wanted, order):
        kinds[int(idx)] = kind
    if has_hallway:
        kinds.append("hallway")
    return kinds


def _make_doors(rects: list[Rect], rng: np.random.Generator, cfg: HouseConfig, min_span: float):
    n = len(rects)
    edges = []
    for i in range(n):
        for j in range(i + 1, n):
            seg = _shared_segment(rects[i], rects[j])
            if seg is not None and seg[3] - seg[2] >= min_span:
                edges.append((i, j, seg))
    # Random spanning tree (Prim-like, random edge from the visited set).
    visited = {0}
    tree = []
    while len(visited) < n:
        frontier = [e for e in edges if (e[0] in visited) != (e[1] in visited)]
        if not frontier:
            return None
        tree.append(frontier[int(rng.integers(len(frontier)))])
        visited |= {tree[-1][0], tree[-1][1]}
    chosen = [(e, True) for e in tree] + [(e, False) for e in edges if e not in tree and rng.uniform() < cfg.extra_door_prob]
    doors = []
    margin = cfg.door_width / 2 + 0.3
    for (i, j, (axis, line, s0, s1)), in_tree in chosen:
        centre = _snap(rng.uniform(s0 + margin, s1 - margin))
        doors.append(DoorSpec(a=i, b=j, axis=axis, line=line, centre=centre, tree=in_tree))
    return doors


def wall_segments(layout: Layout) -> list[tuple[str, float, float, float]]:
    """All wall centre-line segments: the footprint's 4 sides then the internal splits."""
    x0, y0, x1, y1 = layout.footprint
    outer = [("y", y0, x0, x1), ("y", y1, x0, x1), ("x", x0, y0, y1), ("x", x1, y0, y1)]
    return outer + list(layout.splits)
