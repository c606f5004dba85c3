"""Ground-truth question candidates for one house, in HM-EQA's five categories.

Pure scene logic (no rendering): every candidate's answer and wrong choices are read from
the `Scene`. Referents are unique by construction:
- a room is named ("the kitchen") only when its kind occurs once in the house;
- "the <name> in the <room>" only when exactly one object with that display name is there
  (floor lamp and table lamp are both "lamp");
- "the <colour> <name>" (location) only when that colour and name are unique in the house.
Wrong choices are the same kind of thing (object names, colours, numbers, room kinds),
preferably present elsewhere in the house, and always wrong for this scene.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Optional

import numpy as np

from sim.catalog import CATEGORIES, CHAIRS_AROUND, ROOM_RULES
from sim.scene import Room, Scene, SceneObject

QUESTION_CATEGORIES = ("identification", "count", "existence", "state", "location")

DISPLAY_NAMES = {"table lamp": "lamp", "floor lamp": "lamp", "tv": "TV", "tv stand": "TV stand"}
# Colour questions skip objects whose look is not their colour (lamp shade state, foliage, books, screens).
NO_COLOUR = {"door", "table lamp", "floor lamp", "plant", "bookshelf", "tv", "monitor", "rug"}
# State questions: category -> (adjective asked about, state value meaning "yes", needs a front view).
STATEFUL = {"table lamp": ("on", "on", False), "floor lamp": ("on", "on", False), "tv": ("on", "on", True),
            "monitor": ("on", "on", True), "fridge": ("open", "open", True), "laptop": ("open", "open", True),
            "door": ("open", "open", False)}
NUMBER_WORDS = ("None", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten")
YES_NO = ["Yes", "No"]


@dataclass
class Candidate:
    """One question before viewpoints are attached.

    target_ids: instances the answer is read from. mode: "any" (one target visible is enough),
    "all" (every target visible in one view: counts) or "floor" (target is the floor of
    `room_id`: a "No" existence answer needs most of the room seen). facing: targets must be
    seen from their front half (screens, fridge doors). rooms: room ids the question refers to
    (the start pose is kept out of them).
    """

    category: str
    template: str
    question: str
    choices: list[str]
    answer_index: int
    target_ids: list[int]
    mode: str = "any"
    facing: bool = False
    room_id: Optional[int] = None
    rooms: tuple[int, ...] = ()

    @property
    def answer(self) -> str:
        return self.choices[self.answer_index]


def display_name(category: str) -> str:
    return DISPLAY_NAMES.get(category, category)


def plural(name: str) -> str:
    if name.endswith("shelf"):
        return name[:-1] + "ves"
    return name + "s"


def article(name: str) -> str:
    return ("an " if name[0].lower() in "aeiou" else "a ") + name


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def number_word(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def kinds_for(category: str) -> set[str]:
    """Room kinds where the generator may place `category` (ROOM_RULES, chairs via their tables)."""
    kinds = {kind for kind, rules in ROOM_RULES.items() for cat, _lo, _hi in rules if cat == category}
    if category == "chair":
        kinds |= set().union(*(kinds_for(t) for t in CHAIRS_AROUND))
    return kinds


class HouseFacts:
    """Indexes of one scene used by every template (objects by room and display name, unique rooms)."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.objects = [o for o in scene.objects if o.category != "door"]
        self.doors = [o for o in scene.objects if o.category == "door"]
        self.kind_count = Counter(r.kind for r in scene.rooms)
        self.named_rooms = [r for r in scene.rooms if self.kind_count[r.kind] == 1]
        self.rooms = {r.room_id: r for r in scene.rooms}
        self.by_room: dict[int, list[SceneObject]] = {r.room_id: [] for r in scene.rooms}
        for o in self.objects:
            if o.room_id is not None:
                self.by_room[o.room_id].append(o)
        self.house_names = Counter(display_name(o.category) for o in self.objects)

    def in_room(self, room: Room, name: str) -> list[SceneObject]:
        return [o for o in self.by_room[room.room_id] if display_name(o.category) == name]

    def on(self, support: SceneObject) -> list[SceneObject]:
        return [o for o in self.objects if o.support_id == support.instance_id]


def _pick(rng: np.random.Generator, preferred: list, fallback: list, k: int) -> list:
    """k distinct items: a seeded sample of `preferred` first, then of `fallback` (order-preserving inputs)."""
    out: list = []
    for pool in (preferred, fallback):
        pool = [p for p in dict.fromkeys(pool) if p not in out]
        take = min(k - len(out), len(pool))
        if take > 0:
            out += [pool[int(i)] for i in rng.choice(len(pool), size=take, replace=False)]
    return out


def _shuffled(rng: np.random.Generator, answer: str, wrong: list[str]) -> tuple[list[str], int]:
    choices = [answer] + list(wrong)
    order = rng.permutation(len(choices))
    choices = [choices[int(i)] for i in order]
    return choices, choices.index(answer)


def identification(facts: HouseFacts, rng: np.random.Generator, n_choices: int) -> list[Candidate]:
    """"What is on the <support> in the <room>?" and "What colour is the <name> in the <room>?"."""
    out = []
    on_names = sorted({display_name(c) for c, cat in CATEGORIES.items() if cat.placement == "on"})
    present_on = sorted({display_name(o.category) for o in facts.objects if o.support_id is not None})
    for room in facts.named_rooms:
        for support in facts.by_room[room.room_id]:
            items = facts.on(support)
            sname = display_name(support.category)
            if len(items) != 1 or len(facts.in_room(room, sname)) != 1:
                continue
            answer = display_name(items[0].category)
            fits = sorted({display_name(c) for c, cat in CATEGORIES.items() if support.category in cat.supports})
            wrong = _pick(rng, [n for n in present_on + fits if n != answer], [n for n in on_names if n != answer],
                          n_choices - 1)
            if not wrong:
                continue
            choices, idx = _shuffled(rng, cap(answer), [cap(w) for w in wrong])
            out.append(Candidate("identification", "on_support", f"What is on the {sname} in the {room.kind}?",
                                 choices, idx, [items[0].instance_id], room_id=room.room_id, rooms=(room.room_id,)))
        for obj in facts.by_room[room.room_id]:
            name = display_name(obj.category)
            if obj.category in NO_COLOUR or obj.color is None or len(facts.in_room(room, name)) != 1:
                continue
            palette = [c for c in CATEGORIES[obj.category].colors if c != obj.color]
            elsewhere = sorted({o.color for o in facts.objects if display_name(o.category) == name and o.color
                                and o.color != obj.color})
            wrong = _pick(rng, elsewhere, palette, n_choices - 1)
            if not wrong:
                continue
            choices, idx = _shuffled(rng, cap(obj.color), [cap(w) for w in wrong])
            out.append(Candidate("identification", "colour", f"What colour is the {name} in the {room.kind}?",
                                 choices, idx, [obj.instance_id], room_id=room.room_id, rooms=(room.room_id,)))
    return out


def _count_choices(rng: np.random.Generator, count: int, n_choices: int) -> tuple[list[str], int]:
    pool = [n for n in range(max(1, count - 3), count + 4) if n != count]
    near = sorted(pool, key=lambda n: (abs(n - count), n))[: max(n_choices - 1, 0) + 1]
    wrong = _pick(rng, near, pool, n_choices - 1)
    return _shuffled(rng, number_word(count), [number_word(n) for n in wrong])


def table_counts(facts: HouseFacts, room: Room) -> list[tuple[str, str, list[SceneObject]]]:
    """(template, question, counted things) of the room's table counts: the chairs at its dining table and the
    pillows on its bed, where the room holds one of that kind and something to count."""
    out = []
    for table in facts.by_room[room.room_id]:
        tname = display_name(table.category)
        if len(facts.in_room(room, tname)) != 1:
            continue
        if table.category == "dining table":
            things = [o for o in facts.objects if o.group == f"around:{table.instance_id}"]
            out.append(("chairs_at_table", f"How many chairs are at the {tname} in the {room.kind}?", things))
        elif table.category == "bed":
            things = [o for o in facts.on(table) if o.category == "pillow"]
            out.append(("pillows_on_bed", f"How many pillows are on the {tname} in the {room.kind}?", things))
    return [t for t in out if t[2]]


def count(facts: HouseFacts, rng: np.random.Generator, n_choices: int) -> list[Candidate]:
    """Chairs at a table, pillows on a bed, and "How many <things> are there in the <room>?"."""
    out = []
    for room in facts.named_rooms:
        objs = facts.by_room[room.room_id]
        for template, text, things in table_counts(facts, room):
            choices, idx = _count_choices(rng, len(things), n_choices)
            out.append(Candidate("count", template, text, choices, idx, [o.instance_id for o in things],
                                 mode="all", room_id=room.room_id, rooms=(room.room_id,)))
        # Only things whose number varies in this room kind ("How many fridges..." answers itself).
        varying = {display_name(c) for c, lo, hi in ROOM_RULES[room.kind] if hi > lo and hi >= 2}
        names = sorted(({display_name(o.category) for o in objs} & varying) - {"chair", "pillow"})
        for name in names:
            group = facts.in_room(room, name)
            if len(group) < 2 and rng.uniform() < 0.5:
                continue  # keep some "one" answers, but favour real counting
            choices, idx = _count_choices(rng, len(group), n_choices)
            out.append(Candidate("count", "things_in_room", f"How many {plural(name)} are there in the {room.kind}?",
                                 choices, idx, [o.instance_id for o in group], mode="all", room_id=room.room_id,
                                 rooms=(room.room_id,)))
    return out


def existence(facts: HouseFacts) -> list[Candidate]:
    """"Is there a <name> in the <room>?" over the room kind's optional furniture.

    Yes: targets are that room's instances (any one seen answers it). No: the name exists
    elsewhere in the house; the target is the room's floor (mode "floor").
    """
    out = []
    for room in facts.named_rooms:
        optional = sorted({display_name(c) for c, lo, _hi in ROOM_RULES[room.kind] if lo == 0})
        for name in optional:
            present = facts.in_room(room, name)
            if not present and facts.house_names[name] == 0:
                continue  # "no" must be plausible: the thing exists somewhere in the house
            text = f"Is there {article(name)} in the {room.kind}?"
            if present:
                out.append(Candidate("existence", "in_room", text, list(YES_NO), 0, [o.instance_id for o in present],
                                     room_id=room.room_id, rooms=(room.room_id,)))
            else:
                out.append(Candidate("existence", "in_room", text, list(YES_NO), 1, [room.floor_id], mode="floor",
                                     room_id=room.room_id, rooms=(room.room_id,)))
    return out


def state(facts: HouseFacts) -> list[Candidate]:
    """"Is the <lamp/TV/monitor> in the <room> on?", "Is the <fridge/laptop> ... open?", doors between rooms."""
    out = []
    for room in facts.named_rooms:
        for obj in facts.by_room[room.room_id]:
            name = display_name(obj.category)
            if obj.category not in STATEFUL or obj.state is None or len(facts.in_room(room, name)) != 1:
                continue
            adjective, yes_state, facing = STATEFUL[obj.category]
            text = f"Is the {name} in the {room.kind} {adjective}?"
            out.append(Candidate("state", obj.category.replace(" ", "_"), text, list(YES_NO),
                                 0 if obj.state == yes_state else 1, [obj.instance_id], facing=facing,
                                 room_id=room.room_id, rooms=(room.room_id,)))
    named = {r.room_id for r in facts.named_rooms}
    groups = Counter(d.group for d in facts.doors)
    for door in facts.doors:
        a, b = (int(v) for v in str(door.group).split(":")[1].split(","))
        if a not in named or b not in named or groups[door.group] != 1:
            continue
        ka, kb = sorted([facts.rooms[a].kind, facts.rooms[b].kind])
        text = f"Is the door between the {ka} and the {kb} open?"
        out.append(Candidate("state", "door", text, list(YES_NO), 0 if door.state == "open" else 1,
                             [door.instance_id], rooms=(a, b)))
    return out


def location(facts: HouseFacts, rng: np.random.Generator, n_choices: int) -> list[Candidate]:
    """"Where is the <colour> <name>?" for things that could be in several room kinds; choices are room kinds."""
    out = []
    keys = Counter((o.color, display_name(o.category)) for o in facts.objects)
    house_kinds = sorted(facts.kind_count)
    for obj in facts.objects:
        name = display_name(obj.category)
        if obj.color is None or obj.room_id is None or keys[(obj.color, name)] != 1:
            continue
        possible = set().union(*(kinds_for(c) for c in CATEGORIES if display_name(c) == name))
        if len(possible) < 2:
            continue  # "Where is the toilet?" answers itself
        kind = facts.rooms[obj.room_id].kind
        wrong = _pick(rng, [k for k in house_kinds if k in possible and k != kind],
                      [k for k in house_kinds + sorted(possible) if k != kind], n_choices - 1)
        choices, idx = _shuffled(rng, f"In the {kind}", [f"In the {k}" for k in wrong])
        out.append(Candidate("location", "where_is", f"Where is the {obj.color} {name}?", choices, idx,
                             [obj.instance_id], room_id=obj.room_id, rooms=(obj.room_id,)))
    return out


def house_candidates(scene: Scene, rng: np.random.Generator, n_choices: int) -> dict[str, list[Candidate]]:
    """Every candidate question of a house, per category, each list in a seeded random order."""
    if not 2 <= n_choices <= 4:
        raise ValueError(f"n_choices must be in [2, 4], got {n_choices}")
    facts = HouseFacts(scene)
    found = {
        "identification": identification(facts, rng, n_choices),
        "count": count(facts, rng, n_choices),
        "existence": existence(facts),
        "state": state(facts),
        "location": location(facts, rng, n_choices),
    }
    return {cat: [items[int(i)] for i in rng.permutation(len(items))] for cat, items in found.items()}
