"""Procedural houses from a seed: layout -> walls with door openings -> doors -> furniture.

Deterministic: everything random is drawn from one `numpy.random.Generator` seeded
with the house seed. Every room is reachable by the robot disc (checked on the true
free space; furniture is re-drawn until it is).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from sim.catalog import CATEGORIES, CHAIRS_AROUND, ROOM_RULES, build_parts
from sim.config import HouseConfig, RobotConfig
from sim.freespace import FreeSpace
from sim.layout import Layout, make_layout, wall_segments
from sim.scene import STRUCTURE_ID_BASE, Room, Scene, SceneObject, Wall

# Yaw that makes an object's front (+x local) face into the room from each wall side.
SIDE_YAW = {"west": 0.0, "south": math.pi / 2, "east": math.pi, "north": -math.pi / 2}
MAX_FURNISH_TRIES = 10
MAX_LAYOUT_TRIES = 10
# Passages must admit the robot disc grown by this much (metres), so that maps at 0.1 m cells see them open.
PASSAGE_MARGIN = 0.1


def generate_house(seed: int, n_rooms: Optional[int] = None, config: Optional[HouseConfig] = None,
                   robot: Optional[RobotConfig] = None) -> Scene:
    """A furnished one-floor house; `n_rooms` defaults to a seeded draw in [min_rooms, max_rooms]."""
    cfg = config or HouseConfig()
    robot = robot or RobotConfig()
    rng = np.random.default_rng(seed)
    if n_rooms is None:
        n_rooms = int(rng.integers(cfg.min_rooms, cfg.max_rooms + 1))
    if not 1 <= n_rooms <= 16:
        raise ValueError(f"n_rooms must be in [1, 16], got {n_rooms}")
    for _layout_try in range(MAX_LAYOUT_TRIES):
        layout = make_layout(rng, n_rooms, cfg)
        rooms, walls = _structure(layout, cfg)
        for _ in range(MAX_FURNISH_TRIES):
            scene = _furnished(seed, layout, rooms, walls, cfg, rng)
            if scene is None:
                break  # a room too small for its required objects: lay out again
            if all_rooms_reachable(scene, robot, clearance=PASSAGE_MARGIN):
                return scene
    raise RuntimeError(f"house {seed}: could not furnish with every room reachable")


def _furnished(seed: int, layout: Layout, rooms: list[Room], walls: list[Wall], cfg: HouseConfig,
               rng: np.random.Generator) -> Optional[Scene]:
    """Doors and furniture for a laid-out house, or None when a room cannot hold its required objects."""
    objects = _doors(layout, walls, cfg, rng)
    next_id = 1 + len(objects)
    for room in rooms:
        for _attempt in range(MAX_FURNISH_TRIES):
            trial = list(objects)
            trial_next_id, ok = _furnish(room, walls, trial, next_id, rng)
            if ok:
                objects, next_id = trial, trial_next_id
                break
        else:
            return None
    return Scene(seed=seed, rooms=rooms, walls=walls, objects=objects, wall_height=cfg.wall_height)


def all_rooms_reachable(scene: Scene, robot: RobotConfig, resolution: float = 0.05, clearance: float = 0.0) -> bool:
    """True when one connected navigable component reaches every room, for the robot disc grown by `clearance` m."""
    fs = FreeSpace.from_scene(scene, robot.radius + clearance, robot.height, resolution)
    labels_per_room = []
    xs, ys = fs.grid.cell_centres()
    pts = np.stack([xs, ys], axis=-1)
    for room in scene.rooms:
        labels = np.unique(fs.components[room.contains(pts) & fs.navigable])
        labels_per_room.append(set(labels.tolist()))
    common = set.intersection(*labels_per_room) if labels_per_room else set()
    return len(common) > 0


def _structure(layout: Layout, cfg: HouseConfig) -> tuple[list[Room], list[Wall]]:
    half = cfg.wall_thickness / 2.0
    rooms = []
    for i, ((x0, y0, x1, y1), kind) in enumerate(zip(layout.rects, layout.kinds)):
        poly = [(x0 + half, y0 + half), (x1 - half, y0 + half), (x1 - half, y1 - half), (x0 + half, y1 - half)]
        rooms.append(Room(room_id=i, kind=kind, polygon=poly, floor_id=STRUCTURE_ID_BASE + 2 * i,
                          ceiling_id=STRUCTURE_ID_BASE + 2 * i + 1))
    walls = []
    wall_id = STRUCTURE_ID_BASE + 1000
    for axis, line, s0, s1 in wall_segments(layout):
        start, end = ((line, s0), (line, s1)) if axis == "x" else ((s0, line), (s1, line))
        openings = []
        for door in layout.doors:
            if door.axis == axis and abs(door.line - line) < 1e-6 and s0 < door.centre < s1:
                c = door.centre - s0
                openings.append((round(c - cfg.door_width / 2, 6), round(c + cfg.door_width / 2, 6)))
        walls.append(Wall(instance_id=wall_id, start=start, end=end, thickness=cfg.wall_thickness,
                          height=cfg.wall_height, openings=sorted(openings)))
        wall_id += 1
    return rooms, walls


def _doors(layout: Layout, walls: list[Wall], cfg: HouseConfig, rng: np.random.Generator) -> list[SceneObject]:
    """Door leaves: closed (blocking) only on doors outside the spanning tree; open ones swing into a room."""
    objects = []
    for door in layout.doors:
        closed = (not door.tree) and rng.uniform() < cfg.closed_door_prob
        if not closed and rng.uniform() >= cfg.door_leaf_prob:
            continue
        color = str(rng.choice(CATEGORIES["door"].colors))
        size = (0.04, cfg.door_width - 0.02, 2.05)
        if closed:
            pos = (door.line, door.centre) if door.axis == "x" else (door.centre, door.line)
            yaw = 0.0 if door.axis == "x" else math.pi / 2
            state, room_id = "closed", None
        else:
            # Leaves swing into rooms, never into hallways (they would narrow the passage).
            into = door.a if rng.uniform() < 0.5 else door.b
            if layout.kinds[into] == "hallway":
                into = door.b if into == door.a else door.a
            rect = layout.rects[into]
            # Swing into `into`: the leaf stands perpendicular to the wall at the hinge end.
            hinge = door.centre + (cfg.door_width / 2 - 0.03) * (1 if rng.uniform() < 0.5 else -1)
            mid = rect[0] + rect[2] if door.axis == "x" else rect[1] + rect[3]
            sign = 1.0 if mid / 2 > door.line else -1.0
            offset = door.line + sign * (cfg.wall_thickness / 2 + size[1] / 2 + 0.01)
            pos = (offset, hinge) if door.axis == "x" else (hinge, offset)
            yaw = math.pi / 2 if door.axis == "x" else 0.0
            state, room_id = "open", into
        obj = SceneObject(instance_id=len(objects) + 1, category="door", room_id=room_id,
                          position=(float(pos[0]), float(pos[1]), 0.0), yaw=yaw, size=size, color=color, state=state,
                          group=f"between:{door.a},{door.b}")
        obj.parts = build_parts("door", size, color, state)
        obj.update_bbox()
        objects.append(obj)
    return objects


def _door_zones(room: Room, walls: list[Wall], depth: float = 0.8, margin: float = 0.15) -> np.ndarray:
    """(N, 4) rectangles in front of every opening on the room's walls that must stay clear."""
    x0, y0, x1, y1 = room.bounds()
    zones = []
    for wall in walls:
        (ax, ay), (bx, _) = wall.start, wall.end
        for s0, s1 in wall.openings:
            if abs(ax - bx) < 1e-9:  # vertical wall x = ax
                ya, yb = ay + s0 - margin, ay + s1 + margin
                zones.append((ax - depth, ya, ax + depth, yb))
            else:
                xa, xb = ax + s0 - margin, ax + s1 + margin
                zones.append((xa, ay - depth, xb, ay + depth))
    zones = np.asarray(zones, dtype=float).reshape(-1, 4)
    near = (zones[:, 2] >= x0 - 0.2) & (zones[:, 0] <= x1 + 0.2) & (zones[:, 3] >= y0 - 0.2) & (zones[:, 1] <= y1 + 0.2)
    return zones[near]


def _overlaps(lo, hi, others: list[SceneObject], skip: Optional[int] = None, tol: float = 1e-3) -> bool:
    for o in others:
        if o.instance_id == skip:
            continue
        if np.all(np.asarray(lo) < np.asarray(o.bbox_max) - tol) and np.all(np.asarray(hi) > np.asarray(o.bbox_min) + tol):
            return True
    return False


def _fits(obj: SceneObject, room: Room, zones: np.ndarray, objects: list[SceneObject], skip: Optional[int] = None) -> bool:
    x0, y0, x1, y1 = room.bounds()
    lo, hi = obj.bbox_min, obj.bbox_max
    if lo[0] < x0 - 1e-6 or lo[1] < y0 - 1e-6 or hi[0] > x1 + 1e-6 or hi[1] > y1 + 1e-6:
        return False
    if zones.size and np.any((zones[:, 0] < hi[0]) & (zones[:, 2] > lo[0]) & (zones[:, 1] < hi[1]) & (zones[:, 3] > lo[1])):
        return False
    return not _overlaps(lo, hi, objects, skip)


def _make(category: str, instance_id: int, room: Room, rng: np.random.Generator) -> SceneObject:
    cat = CATEGORIES[category]
    size = tuple(float(np.round(rng.uniform(a, b), 3)) for a, b in cat.size)
    color = str(rng.choice(cat.colors)) if cat.colors else None
    state = str(rng.choice(cat.states)) if cat.states else None
    obj = SceneObject(instance_id=instance_id, category=category, room_id=room.room_id, position=(0.0, 0.0, 0.0),
                      yaw=0.0, size=size, color=color, state=state)
    obj.parts = build_parts(category, size, color, state)
    return obj


def _place_against_wall(obj: SceneObject, room: Room, rng: np.random.Generator, z: float = 0.0) -> None:
    x0, y0, x1, y1 = room.bounds()
    d, w = obj.size[0], obj.size[1]
    side = str(rng.choice(list(SIDE_YAW)))
    gap = 0.005
    if side in ("west", "east"):
        along = rng.uniform(y0 + w / 2, max(y0 + w / 2, y1 - w / 2))
        x = x0 + d / 2 + gap if side == "west" else x1 - d / 2 - gap
        pos = (x, along)
    else:
        along = rng.uniform(x0 + w / 2, max(x0 + w / 2, x1 - w / 2))
        y = y0 + d / 2 + gap if side == "south" else y1 - d / 2 - gap
        pos = (along, y)
    obj.position = (float(np.round(pos[0], 4)), float(np.round(pos[1], 4)), z)
    obj.yaw = SIDE_YAW[side]
    obj.update_bbox()


def _place_free(obj: SceneObject, room: Room, rng: np.random.Generator, margin: float) -> None:
    x0, y0, x1, y1 = room.bounds()
    obj.yaw = float(rng.choice([0.0, math.pi / 2]))
    ext = max(obj.size[0], obj.size[1]) / 2 + margin
    x = rng.uniform(x0 + ext, max(x0 + ext, x1 - ext))
    y = rng.uniform(y0 + ext, max(y0 + ext, y1 - ext))
    obj.position = (float(np.round(x, 4)), float(np.round(y, 4)), 0.0)
    obj.update_bbox()


def _place_on(obj: SceneObject, support: SceneObject, rng: np.random.Generator) -> None:
    lo, hi = np.asarray(support.bbox_min), np.asarray(support.bbox_max)
    obj.yaw = support.yaw
    ext = np.array([obj.size[0], obj.size[1]]) / 2
    if abs(math.sin(obj.yaw)) > 0.5:
        ext = ext[::-1]
    x = rng.uniform(lo[0] + ext[0] + 0.02, max(lo[0] + ext[0] + 0.02, hi[0] - ext[0] - 0.02))
    y = rng.uniform(lo[1] + ext[1] + 0.02, max(lo[1] + ext[1] + 0.02, hi[1] - ext[1] - 0.02))
    obj.position = (float(np.round(x, 4)), float(np.round(y, 4)), float(hi[2]))
    obj.support_id = support.instance_id
    obj.update_bbox()


def _chair_slots(table: SceneObject) -> list[tuple[float, float, float]]:
    """World (x, y, yaw) chair positions around a table or desk, chairs facing it."""
    d, w = table.size[0], table.size[1]
    if table.category == "desk":
        local = [(d / 2 + 0.32, 0.0, math.pi)]
    else:
        local = []
        n_side = max(1, int(w // 0.6))
        for k in range(n_side):
            y = -w / 2 + (k + 0.5) * w / n_side
            local += [(d / 2 + 0.3, y, math.pi), (-d / 2 - 0.3, y, 0.0)]
        local += [(0.0, w / 2 + 0.3, -math.pi / 2), (0.0, -w / 2 - 0.3, math.pi / 2)]
    T = table.local_to_world()
    out = []
    for x, y, yaw in local:
        p = T[:3, :3] @ np.array([x, y, 0.0]) + T[:3, 3]
        out.append((float(np.round(p[0], 4)), float(np.round(p[1], 4)), float(table.yaw + yaw)))
    return out


def _furnish(room: Room, walls: list[Wall], objects: list[SceneObject], next_id: int,
             rng: np.random.Generator) -> tuple[int, bool]:
    """Place the room kind's objects; returns the next free instance id and whether required ones all fit."""
    zones = _door_zones(room, walls)
    for category, lo_n, hi_n in ROOM_RULES[room.kind]:
        count = int(rng.integers(lo_n, hi_n + 1))
        cat = CATEGORIES[category]
        for index in range(count):
            obj = _make(category, next_id, room, rng)
            placed = False
            for _try in range(60):
                if cat.placement == "wall":
                    _place_against_wall(obj, room, rng)
                elif cat.placement == "wall_mounted":
                    _place_against_wall(obj, room, rng, z=cat.mount_height)
                elif cat.placement == "free":
                    _place_free(obj, room, rng, margin=0.3 if category == "rug" else 0.75)
                elif cat.placement == "on":
                    supports = [o for o in objects if o.room_id == room.room_id and o.category in cat.supports]
                    if not supports:
                        break
                    support = supports[int(rng.integers(len(supports)))]
                    _place_on(obj, support, rng)
                    if _fits(obj, room, np.zeros((0, 4)), objects, skip=support.instance_id):
                        placed = True
                        break
                    continue
                if _fits(obj, room, zones, objects):
                    placed = True
                    break
            if placed:
                objects.append(obj)
                next_id += 1
                if category in CHAIRS_AROUND:
                    next_id = _place_chairs(obj, room, zones, objects, next_id, rng)
            elif index < lo_n:
                return next_id, False
    return next_id, True


def _place_chairs(table: SceneObject, room: Room, zones: np.ndarray, objects: list[SceneObject], next_id: int,
                  rng: np.random.Generator) -> int:
    lo_n, hi_n = CHAIRS_AROUND[table.category]
    want = int(rng.integers(lo_n, hi_n + 1))
    slots = _chair_slots(table)
    color = str(rng.choice(CATEGORIES["chair"].colors))  # a set of chairs shares one colour
    placed = 0
    for k in rng.permutation(len(slots)):
        if placed >= want:
            break
        x, y, yaw = slots[int(k)]
        chair = _make("chair", next_id, room, rng)
        chair.color = color
        chair.parts = build_parts("chair", chair.size, color, None)
        chair.position, chair.yaw, chair.group = (x, y, 0.0), yaw, f"around:{table.instance_id}"
        chair.update_bbox()
        if _fits(chair, room, zones, objects):
            objects.append(chair)
            next_id += 1
            placed += 1
    return next_id
