"""Object categories: sizes, placement rules, attributes and box-part geometry.

Local object frame: footprint x in [-d/2, d/2] (front faces +x), y in [-w/2, w/2],
z from 0 (support) to h, metres. Builders return `Part`s in that frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from sim.palette import COLORS, LAMP_OFF, LAMP_ON, SCREEN_OFF, SCREEN_ON
from sim.scene import Part

RGB = tuple[int, int, int]
Builder = Callable[[float, float, float, RGB, Optional[str]], list[Part]]

WOOD = (140, 95, 55)
DARK = (40, 40, 45)
METAL = (170, 172, 178)
WHITE = (238, 238, 235)
FOLIAGE = (45, 125, 50)


def _shade(rgb: RGB, f: float) -> RGB:
    return tuple(int(max(0, min(255, round(c * f)))) for c in rgb)  # type: ignore[return-value]


def box(lo, hi, rgb: RGB, emissive: bool = False) -> Part:
    return Part(tuple(float(v) for v in lo), tuple(float(v) for v in hi), tuple(int(c) for c in rgb), emissive)


def _block(d, w, h, rgb, state=None):
    return [box((-d / 2, -w / 2, 0), (d / 2, w / 2, h), rgb)]


def _legs(d, w, h_top, t, rgb):
    parts = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * (d / 2 - t), sy * (w / 2 - t)
            parts.append(box((x - t / 2, y - t / 2, 0), (x + t / 2, y + t / 2, h_top), rgb))
    return parts


def _table(d, w, h, rgb, state=None):
    top = 0.04
    return _legs(d, w, h - top, 0.05, _shade(rgb, 0.7)) + [box((-d / 2, -w / 2, h - top), (d / 2, w / 2, h), rgb)]


def _chair(d, w, h, rgb, state=None):
    seat = 0.45
    return _legs(d, w, seat - 0.04, 0.04, _shade(rgb, 0.7)) + [
        box((-d / 2, -w / 2, seat - 0.04), (d / 2, w / 2, seat), rgb),
        box((-d / 2, -w / 2, seat), (-d / 2 + 0.05, w / 2, h), _shade(rgb, 0.85)),
    ]


def _sofa(d, w, h, rgb, state=None):
    seat, arm = 0.42, 0.18
    return [
        box((-d / 2, -w / 2, 0), (d / 2, w / 2, seat), rgb),
        box((-d / 2, -w / 2, seat), (-d / 2 + 0.22, w / 2, h), _shade(rgb, 0.85)),
        box((-d / 2, -w / 2, seat), (d / 2, -w / 2 + arm, seat + 0.2), _shade(rgb, 0.9)),
        box((-d / 2, w / 2 - arm, seat), (d / 2, w / 2, seat + 0.2), _shade(rgb, 0.9)),
    ]


def _bed(d, w, h, rgb, state=None):
    # Head against the wall at -x; mattress white, cover coloured.
    return [
        box((-d / 2, -w / 2, 0), (d / 2, w / 2, 0.3), WOOD),
        box((-d / 2 + 0.05, -w / 2 + 0.03, 0.3), (d / 2 - 0.03, w / 2 - 0.03, 0.45), WHITE),
        box((-d / 2 + 0.6, -w / 2 + 0.02, 0.45), (d / 2 - 0.02, w / 2 - 0.02, 0.5), rgb),
        box((-d / 2, -w / 2, 0), (-d / 2 + 0.06, w / 2, h), _shade(WOOD, 0.8)),
    ]


def _lamp(d, w, h, rgb, state=None):
    shade_rgb = LAMP_ON if state == "on" else LAMP_OFF
    shade_h = min(0.3, h * 0.4)
    return [
        box((-d / 4, -w / 4, 0), (d / 4, w / 4, 0.04), DARK),
        box((-0.02, -0.02, 0.04), (0.02, 0.02, h - shade_h), rgb),
        box((-d / 2, -w / 2, h - shade_h), (d / 2, w / 2, h), shade_rgb, emissive=(state == "on")),
    ]


def _tv(d, w, h, rgb, state=None):
    return [
        box((-d / 2, -w / 4, 0), (d / 2, w / 4, 0.03), DARK),
        box((-d / 2, -w / 2, 0.05), (d / 2 - 0.01, w / 2, h), rgb),
        box((d / 2 - 0.01, -w / 2 + 0.03, 0.08), (d / 2, w / 2 - 0.03, h - 0.03),
            SCREEN_ON if state == "on" else SCREEN_OFF, emissive=(state == "on")),
    ]


def _monitor(d, w, h, rgb, state=None):
    return _tv(d, w, h, rgb, state)


def _fridge(d, w, h, rgb, state=None):
    parts = [box((-d / 2, -w / 2, 0), (d / 2 - 0.05, w / 2, h), rgb)]
    if state == "open":
        # Door swung 90 degrees about the hinge at (+x, -y): it stands out of the front.
        parts.append(box((d / 2 - 0.05, -w / 2, 0.02), (d / 2 - 0.05 + w * 0.9, -w / 2 + 0.05, h - 0.02), _shade(rgb, 0.9)))
        parts.append(box((d / 2 - 0.06, -w / 2 + 0.05, 0.1), (d / 2 - 0.05, w / 2 - 0.05, h - 0.1), (250, 250, 235), emissive=True))
    else:
        parts.append(box((d / 2 - 0.05, -w / 2, 0.02), (d / 2, w / 2, h - 0.02), _shade(rgb, 0.9)))
        parts.append(box((d / 2, w / 2 - 0.1, h * 0.45), (d / 2 + 0.03, w / 2 - 0.07, h * 0.75), METAL))
    return parts


def _stove(d, w, h, rgb, state=None):
    parts = [box((-d / 2, -w / 2, 0), (d / 2, w / 2, h - 0.02), rgb), box((-d / 2, -w / 2, h - 0.02), (d / 2, w / 2, h), DARK)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * d / 4, sy * w / 4
            parts.append(box((x - 0.08, y - 0.08, h), (x + 0.08, y + 0.08, h + 0.01), (90, 90, 90)))
    parts.append(box((d / 2, -w / 2 + 0.08, 0.15), (d / 2 + 0.01, w / 2 - 0.08, h - 0.2), DARK))
    return parts


def _counter(d, w, h, rgb, state=None):
    return [box((-d / 2, -w / 2, 0), (d / 2, w / 2, h - 0.04), rgb), box((-d / 2, -w / 2, h - 0.04), (d / 2, w / 2, h), (200, 200, 195))]


def _sink(d, w, h, rgb, state=None):
    return _counter(d, w, h, rgb) + [
        box((-d / 4, -w / 4, h), (d / 4, w / 4, h + 0.02), METAL),
        box((-d / 2 + 0.03, -0.02, h), (-d / 2 + 0.07, 0.02, h + 0.3), METAL),
    ]


def _washer(d, w, h, rgb, state=None):
    return [box((-d / 2, -w / 2, 0), (d / 2, w / 2, h), rgb),
            box((d / 2, -w / 3, h * 0.2), (d / 2 + 0.01, w / 3, h * 0.75), DARK)]


def _shelf(d, w, h, rgb, state=None):
    parts = [box((-d / 2, -w / 2, 0), (-d / 2 + 0.03, w / 2, h), rgb),
             box((-d / 2, -w / 2, 0), (d / 2, -w / 2 + 0.03, h), rgb),
             box((-d / 2, w / 2 - 0.03, 0), (d / 2, w / 2, h), rgb)]
    n = max(2, int(h / 0.4))
    for i in range(n + 1):
        z = i * (h - 0.03) / n
        parts.append(box((-d / 2, -w / 2, z), (d / 2, w / 2, z + 0.03), rgb))
    return parts


def _bookshelf(d, w, h, rgb, state=None):
    parts = _shelf(d, w, h, rgb)
    n = max(2, int(h / 0.4))
    book_colors = [COLORS["red"], COLORS["blue"], COLORS["green"], COLORS["yellow"]]
    for i in range(n):
        z = i * (h - 0.03) / n + 0.03
        parts.append(box((-d / 2 + 0.03, -w / 2 + 0.05, z), (d / 2 - 0.05, w / 2 - 0.05, z + 0.25), book_colors[i % 4]))
    return parts


def _plant(d, w, h, rgb, state=None):
    pot = min(0.3, h * 0.35)
    return [box((-d / 3, -w / 3, 0), (d / 3, w / 3, pot), rgb), box((-d / 2, -w / 2, pot), (d / 2, w / 2, h), FOLIAGE)]


def _laptop(d, w, h, rgb, state=None):
    parts = [box((-d / 2, -w / 2, 0), (d / 2, w / 2, 0.02), rgb)]
    if state == "open":
        parts.append(box((-d / 2, -w / 2, 0.02), (-d / 2 + 0.015, w / 2, h), rgb))
        parts.append(box((-d / 2 + 0.015, -w / 2 + 0.02, 0.04), (-d / 2 + 0.02, w / 2 - 0.02, h - 0.02), SCREEN_ON, emissive=True))
    else:
        parts.append(box((-d / 2, -w / 2, 0.02), (d / 2, w / 2, 0.035), _shade(rgb, 0.8)))
    return parts


def _toilet(d, w, h, rgb, state=None):
    return [box((-d / 2, -w / 2, 0), (-d / 2 + 0.2, w / 2, h), rgb),
            box((-d / 2 + 0.2, -w / 3, 0), (d / 2, w / 3, 0.42), rgb)]


def _bathtub(d, w, h, rgb, state=None):
    return [box((-d / 2, -w / 2, 0), (d / 2, w / 2, h - 0.05), rgb),
            box((-d / 2 + 0.08, -w / 2 + 0.08, h - 0.05), (d / 2 - 0.08, w / 2 - 0.08, h - 0.04), (150, 200, 230))]


def _coat_rack(d, w, h, rgb, state=None):
    return [box((-d / 2, -w / 2, 0), (d / 2, w / 2, 0.04), rgb), box((-0.03, -0.03, 0.04), (0.03, 0.03, h - 0.1), rgb),
            box((-d / 2, -w / 2, h - 0.1), (d / 2, w / 2, h), rgb)]


def _clock(d, w, h, rgb, state=None):
    return [box((-d / 2, -w / 2, 0), (d / 2, w / 2, h), rgb),
            box((d / 2, -w / 2 + 0.04, 0.04), (d / 2 + 0.005, w / 2 - 0.04, h - 0.04), WHITE),
            box((d / 2 + 0.005, -0.01, h / 2), (d / 2 + 0.01, 0.01, h - 0.06), DARK)]


def _picture(d, w, h, rgb, state=None):
    return [box((-d / 2, -w / 2, 0), (d / 2, w / 2, h), _shade(WOOD, 0.6)),
            box((d / 2, -w / 2 + 0.05, 0.05), (d / 2 + 0.005, w / 2 - 0.05, h - 0.05), rgb)]


def _door(d, w, h, rgb, state=None):
    return _block(d, w, h, rgb)


@dataclass(frozen=True)
class Category:
    """An object category: size ranges (d, w, h) metres, placement, attributes, geometry."""

    name: str
    size: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    placement: str  # "wall" | "free" | "on" | "wall_mounted" | "around"
    build: Builder
    colors: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    supports: tuple[str, ...] = ()  # for placement "on": categories it may stand on
    mount_height: float = 0.0  # for "wall_mounted": bottom height above the floor


_ALL = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "white", "black", "grey", "brown", "beige")
_SOFT = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "grey", "beige")
_HARD = ("white", "black", "grey", "brown")

CATEGORIES: dict[str, Category] = {c.name: c for c in [
    Category("stove", ((0.6, 0.65), (0.6, 0.75), (0.9, 0.92)), "wall", _stove, ("white", "black", "grey")),
    Category("fridge", ((0.65, 0.7), (0.6, 0.8), (1.7, 1.9)), "wall", _fridge, ("white", "black", "grey", "red"), ("open", "closed")),
    Category("sink", ((0.55, 0.6), (0.6, 1.0), (0.85, 0.9)), "wall", _sink, ("white", "grey", "brown")),
    Category("counter", ((0.6, 0.6), (1.0, 1.8), (0.9, 0.9)), "wall", _counter, ("white", "grey", "brown", "black")),
    Category("microwave", ((0.35, 0.4), (0.45, 0.5), (0.28, 0.3)), "on", _washer, ("white", "black", "grey"), supports=("counter",)),
    Category("kettle", ((0.15, 0.2), (0.15, 0.2), (0.22, 0.26)), "on", _block, _ALL, supports=("counter",)),
    Category("trash can", ((0.3, 0.35), (0.3, 0.35), (0.5, 0.6)), "wall", _block, ("grey", "black", "white", "blue", "green")),
    Category("sofa", ((0.85, 0.95), (1.8, 2.3), (0.85, 0.95)), "wall", _sofa, _SOFT),
    Category("armchair", ((0.8, 0.85), (0.8, 0.9), (0.85, 0.95)), "wall", _sofa, _SOFT),
    Category("tv stand", ((0.4, 0.45), (1.2, 1.6), (0.5, 0.55)), "wall", _block, ("black", "brown", "white")),
    Category("tv", ((0.08, 0.1), (0.9, 1.2), (0.55, 0.7)), "on", _tv, ("black", "grey"), ("on", "off"), supports=("tv stand",)),
    Category("coffee table", ((0.5, 0.6), (0.9, 1.2), (0.4, 0.45)), "free", _table, ("brown", "white", "black")),
    Category("rug", ((1.4, 2.0), (1.8, 2.4), (0.01, 0.01)), "free", _block, _SOFT),
    Category("plant", ((0.35, 0.45), (0.35, 0.45), (0.7, 1.3)), "wall", _plant, ("brown", "white", "orange", "grey")),
    Category("floor lamp", ((0.35, 0.4), (0.35, 0.4), (1.4, 1.6)), "wall", _lamp, ("black", "white", "grey"), ("on", "off")),
    Category("table lamp", ((0.25, 0.3), (0.25, 0.3), (0.4, 0.5)), "on", _lamp, ("black", "white", "red", "blue"), ("on", "off"),
             supports=("nightstand", "desk")),
    Category("bookshelf", ((0.3, 0.35), (0.8, 1.2), (1.6, 1.9)), "wall", _bookshelf, ("brown", "white", "black")),
    Category("dining table", ((0.9, 1.0), (1.4, 1.8), (0.74, 0.76)), "free", _table, ("brown", "white", "black")),
    Category("chair", ((0.45, 0.5), (0.45, 0.5), (0.9, 0.95)), "around", _chair, ("brown", "white", "black", "red", "blue", "green")),
    Category("vase", ((0.15, 0.2), (0.15, 0.2), (0.25, 0.35)), "on", _block, _ALL, supports=("dining table", "cabinet", "coffee table")),
    Category("cabinet", ((0.45, 0.5), (0.8, 1.2), (0.8, 0.9)), "wall", _counter, ("brown", "white", "black")),
    Category("bed", ((1.9, 2.1), (1.4, 1.8), (0.9, 1.0)), "wall", _bed, _SOFT),
    Category("pillow", ((0.35, 0.4), (0.5, 0.6), (0.12, 0.15)), "on", _block, _SOFT + ("white",), supports=("bed",)),
    Category("nightstand", ((0.4, 0.45), (0.4, 0.5), (0.5, 0.55)), "wall", _counter, ("brown", "white", "black")),
    Category("wardrobe", ((0.55, 0.6), (1.0, 1.6), (1.9, 2.1)), "wall", _counter, ("brown", "white", "black", "grey")),
    Category("backpack", ((0.2, 0.25), (0.3, 0.35), (0.4, 0.5)), "wall", _block, ("red", "blue", "green", "yellow", "black", "orange", "purple")),
    Category("toilet", ((0.65, 0.7), (0.4, 0.45), (0.75, 0.8)), "wall", _toilet, ("white",)),
    Category("bathtub", ((0.75, 0.8), (1.5, 1.7), (0.55, 0.6)), "wall", _bathtub, ("white",)),
    Category("towel", ((0.03, 0.03), (0.4, 0.6), (0.6, 0.8)), "wall_mounted", _block, _SOFT + ("white",), mount_height=0.7),
    Category("desk", ((0.6, 0.7), (1.1, 1.5), (0.74, 0.76)), "wall", _table, ("brown", "white", "black")),
    Category("laptop", ((0.25, 0.28), (0.33, 0.36), (0.22, 0.24)), "on", _laptop, ("grey", "black", "white"), ("open", "closed"),
             supports=("desk", "dining table", "coffee table")),
    Category("monitor", ((0.15, 0.2), (0.5, 0.6), (0.4, 0.45)), "on", _monitor, ("black",), ("on", "off"), supports=("desk",)),
    Category("washing machine", ((0.6, 0.6), (0.6, 0.6), (0.85, 0.85)), "wall", _washer, ("white", "grey")),
    Category("dryer", ((0.6, 0.6), (0.6, 0.6), (0.85, 0.85)), "wall", _washer, ("white", "grey")),
    Category("laundry basket", ((0.35, 0.4), (0.45, 0.5), (0.4, 0.5)), "wall", _block, ("white", "blue", "grey", "brown")),
    Category("shelf", ((0.35, 0.4), (0.8, 1.0), (1.2, 1.6)), "wall", _shelf, ("white", "grey", "brown")),
    Category("shoe rack", ((0.3, 0.35), (0.7, 1.0), (0.4, 0.6)), "wall", _shelf, ("brown", "black", "white")),
    Category("coat rack", ((0.4, 0.45), (0.4, 0.45), (1.7, 1.8)), "wall", _coat_rack, ("brown", "black")),
    Category("picture", ((0.03, 0.03), (0.5, 0.9), (0.4, 0.7)), "wall_mounted", _picture, _ALL, mount_height=1.2),
    Category("clock", ((0.05, 0.05), (0.3, 0.35), (0.3, 0.35)), "wall_mounted", _clock, ("black", "white", "red", "brown"), mount_height=1.7),
    Category("door", ((0.05, 0.05), (0.9, 0.9), (2.05, 2.05)), "door", _door, ("brown", "white", "grey"), ("open", "closed")),
]}

# Per room kind: (category, min count, max count). Order = placement order (supports first).
ROOM_RULES: dict[str, list[tuple[str, int, int]]] = {
    "kitchen": [("fridge", 1, 1), ("stove", 1, 1), ("sink", 1, 1), ("counter", 1, 2), ("microwave", 0, 1),
                ("kettle", 0, 1), ("trash can", 0, 1), ("dining table", 0, 1), ("plant", 0, 1), ("clock", 0, 1)],
    "living room": [("sofa", 1, 1), ("tv stand", 1, 1), ("tv", 1, 1), ("coffee table", 0, 1), ("armchair", 0, 2),
                    ("floor lamp", 0, 2), ("bookshelf", 0, 1), ("plant", 0, 2), ("picture", 0, 2), ("laptop", 0, 1),
                    ("backpack", 0, 1)],
    "dining room": [("dining table", 1, 1), ("cabinet", 0, 1), ("vase", 0, 1), ("plant", 0, 2), ("floor lamp", 0, 1),
                    ("picture", 0, 2), ("clock", 0, 1), ("laptop", 0, 1)],
    "bedroom": [("bed", 1, 1), ("pillow", 1, 3), ("nightstand", 1, 2), ("table lamp", 0, 2), ("wardrobe", 0, 1),
                ("backpack", 0, 1), ("plant", 0, 1), ("picture", 0, 1), ("desk", 0, 1), ("laptop", 0, 1)],
    "bathroom": [("toilet", 1, 1), ("sink", 1, 1), ("bathtub", 0, 1), ("towel", 1, 3), ("trash can", 0, 1),
                 ("plant", 0, 1)],
    "office": [("desk", 1, 1), ("monitor", 0, 1), ("laptop", 0, 1), ("table lamp", 0, 1), ("bookshelf", 0, 2),
               ("backpack", 0, 1), ("plant", 0, 2), ("floor lamp", 0, 1), ("trash can", 0, 1), ("clock", 0, 1)],
    "hallway": [("shoe rack", 0, 1), ("coat rack", 0, 1), ("plant", 0, 1), ("picture", 0, 3), ("backpack", 0, 1),
                ("clock", 0, 1)],
    "laundry": [("washing machine", 1, 1), ("dryer", 0, 1), ("laundry basket", 1, 2), ("shelf", 0, 1), ("towel", 0, 2),
                ("trash can", 0, 1)],
}

# Chairs placed around these tables (count range).
CHAIRS_AROUND = {"dining table": (2, 6), "desk": (1, 1)}


def build_parts(category: str, size, color: Optional[str], state: Optional[str]) -> list[Part]:
    """Parts for an object of `category` with size (d, w, h), palette colour name and state."""
    cat = CATEGORIES[category]
    rgb = COLORS[color] if color else COLORS["grey"]
    return cat.build(size[0], size[1], size[2], rgb, state)
