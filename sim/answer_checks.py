"""Checks that a question has one right answer as seen from an answerable viewpoint (`QuestionConfig.answer_checks`).

A view can meet the visibility rule (enough target pixels) and still read two ways: a white stove with a dark top
and a dark oven door looks black from above. Each check looks at the ray-cast views (`VisibilityCaster`), with
the surface colour of every pixel taken from the part it hits before lighting:

- colour ("What colour is the X?"): of the target's pixels, at least `colour_majority` show the answer colour and
  none of the wrong choices names the colour of more than `colour_distractor_max` (dark tops, doors, frames,
  legs);
- state (on/off, open): where the target has a part that shows its state (a lamp's shade, a screen, a fridge's
  lit inside: emissive parts, shades and screens that are off), that part shows with `state_min_pixels`;
- count: no instance of the counted thing outside the counted ones shows with more than
  `count_other_max_pixels` (a plant in the next room, seen through the door, is not "in the kitchen"); every
  counted instance already shows in each answerable view (the visibility rule's "all" mode).

Surface colours are named by the palette colour they are a shade of: the name k minimising |c - s p_k| over
shades s in [SHADE_MIN, 1] (the catalog draws parts at 0.6-1.0 of their colour). Pixel counts are
full-resolution pixels, as the visibility rule's.
"""
from __future__ import annotations

import numpy as np

from sim.palette import COLORS, LAMP_OFF, SCREEN_OFF
from sim.question_templates import Candidate, display_name
from sim.scene import Scene

SHADE_MIN = 0.55
COLOUR_NAMES = tuple(COLORS)
STATE_OFF_COLOURS = (LAMP_OFF, SCREEN_OFF)  # parts that show an "off" state (lit ones are emissive)


def colour_names(rgb01: np.ndarray) -> np.ndarray:
    """(T,) index into COLOUR_NAMES of each (T, 3) colour in [0, 1]: the palette colour it is a shade of."""
    c = np.asarray(rgb01, dtype=float) * 255.0
    p = np.array([COLORS[n] for n in COLOUR_NAMES], dtype=float)  # (K, 3)
    s = np.clip((c @ p.T) / np.sum(p * p, axis=1), SHADE_MIN, 1.0)  # (T, K) best shade per name
    d = np.linalg.norm(c[:, None, :] - s[..., None] * p[None], axis=-1)
    return np.argmin(d, axis=1)


class TriangleLabels:
    """Per triangle of a scene mesh (plus a trailing entry for 'no hit'): its colour name and whether it is a part
    that shows its object's state."""

    def __init__(self, mesh):
        names = colour_names(mesh.color)
        off = np.zeros(len(mesh.color), dtype=bool)
        rgb = np.rint(mesh.color * 255).astype(int)
        for colour in STATE_OFF_COLOURS:
            off |= np.all(rgb == np.array(colour), axis=1)
        self.colour = np.append(names, -1)
        self.state_part = np.append(mesh.emissive | off, False)
        self.instance = mesh.instance


def colour_shares(tris: np.ndarray, ids: np.ndarray, target: int, labels: TriangleLabels) -> np.ndarray:
    """(N, K) share of the target's pixels in each of N views showing each palette colour (0 without pixels)."""
    out = np.zeros((len(tris), len(COLOUR_NAMES)))
    for i in range(len(tris)):
        names = labels.colour[tris[i][ids[i] == target]]
        if len(names):
            out[i] = np.bincount(names, minlength=len(COLOUR_NAMES)) / len(names)
    return out


def check_views(cand: Candidate, scene: Scene, ids: np.ndarray, tris: np.ndarray, scale: float,
                labels: TriangleLabels, cfg) -> dict[str, np.ndarray]:
    """Per check that applies to the candidate ("colour", "state", "count"), (N,) bool: which of N views (their
    instance ids and triangles, `VisibilityCaster.cast_triangles`; `scale` full-resolution pixels per pixel)
    pass it. cfg: the QuestionConfig thresholds."""
    n = len(ids)
    out: dict[str, np.ndarray] = {}
    if cand.template == "colour":
        shares = colour_shares(tris, ids, cand.target_ids[0], labels)
        ok = shares[:, COLOUR_NAMES.index(cand.answer.lower())] >= cfg.colour_majority
        for i, choice in enumerate(cand.choices):
            if i != cand.answer_index and choice.lower() in COLOUR_NAMES:
                ok &= shares[:, COLOUR_NAMES.index(choice.lower())] <= cfg.colour_distractor_max
        out["colour"] = ok
    elif cand.category == "state":
        target = cand.target_ids[0]
        if np.any(labels.state_part[:-1][labels.instance == target]):
            shown = ((ids == target) & labels.state_part[tris]).reshape(n, -1).sum(axis=1) * scale
            out["state"] = shown >= cfg.state_min_pixels
    elif cand.category == "count":
        name = display_name(scene.object_by_id(cand.target_ids[0]).category)
        others = [o.instance_id for o in scene.objects
                  if display_name(o.category) == name and o.instance_id not in cand.target_ids]
        flat = ids.reshape(n, -1)
        ok = np.ones(n, dtype=bool)
        for other in others:
            ok &= (flat == other).sum(axis=1) * scale <= cfg.count_other_max_pixels
        out["count"] = ok
    return out
