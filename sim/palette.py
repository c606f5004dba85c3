"""Named colour palette (sRGB 0-255) and room-kind floor styles."""
from __future__ import annotations

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "green": (50, 150, 60),
    "blue": (40, 80, 200),
    "yellow": (230, 200, 40),
    "orange": (235, 130, 30),
    "purple": (130, 60, 160),
    "pink": (235, 140, 180),
    "white": (235, 235, 230),
    "black": (30, 30, 32),
    "grey": (128, 128, 128),
    "brown": (120, 80, 45),
    "beige": (215, 195, 160),
}

# Floor styles per room kind: (pattern, colour A, colour B). Patterns: "tiles" (checker),
# "planks" (wooden stripes along x), "carpet" (plain), "runner" (centre stripe pattern).
FLOOR_STYLES: dict[str, tuple[str, tuple[int, int, int], tuple[int, int, int]]] = {
    "kitchen": ("tiles", (225, 225, 215), (60, 60, 65)),
    "bathroom": ("tiles", (170, 215, 230), (235, 245, 250)),
    "laundry": ("tiles", (200, 200, 120), (160, 160, 90)),
    "living room": ("planks", (150, 100, 60), (125, 82, 48)),
    "dining room": ("planks", (190, 140, 90), (170, 120, 75)),
    "office": ("carpet", (90, 110, 130), (80, 100, 120)),
    "bedroom": ("carpet", (170, 120, 140), (160, 110, 130)),
    "hallway": ("runner", (140, 130, 120), (110, 40, 40)),
}

WALL_COLOR = (225, 220, 205)
CEILING_COLOR = (245, 245, 240)
LAMP_ON = (255, 235, 150)
LAMP_OFF = (150, 142, 125)
SCREEN_ON = (120, 185, 255)
SCREEN_OFF = (18, 18, 22)


def color_rgb(name: str) -> tuple[int, int, int]:
    """RGB of a palette colour name; ValueError for unknown names."""
    try:
        return COLORS[name]
    except KeyError:
        raise ValueError(f"unknown colour {name!r}; palette: {sorted(COLORS)}") from None
