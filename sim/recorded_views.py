"""The simulator camera's views at recorded robot poses, and the question files episodes ran: for scripts that score
recorded episodes again (other weights, other settings) without running them."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from mapping.frame import Intrinsics, base_pose, camera_mount
from sim.config import SimConfig
from sim.house import generate_house
from sim.render import Renderer


def read_question_files(paths: Iterable[str | Path]) -> dict[str, dict]:
    """Question id -> its JSON record, from JSON-lines question files (`eqa dataset make`); ValueError naming the
    file and line of a line that is not a JSON object with an "id", or of an id given twice."""
    questions: dict[str, dict] = {}
    for path in paths:
        for n, line in enumerate(Path(path).read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                q = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not JSON ({e.msg})") from None
            if not isinstance(q, dict) or "id" not in q:
                raise ValueError(f"{path}:{n}: a question record needs an \"id\"")
            if q["id"] in questions:
                raise ValueError(f"{path}:{n}: question {q['id']!r} given twice")
            questions[q["id"]] = q
    return questions


class HouseCamera:
    """The simulator's camera (SimConfig.camera: mount height, pitch, horizontal FOV) in built-in houses, rendering
    width x height pixels (default: the camera's own size). One house at a time: a house and its renderer are made
    on its first render and kept until another house is asked for, so render views house by house."""

    def __init__(self, sim: Optional[SimConfig] = None, width: Optional[int] = None, height: Optional[int] = None):
        self.sim = sim or SimConfig()
        cam = self.sim.camera
        self.width, self.height = width or cam.width, height or cam.height
        self.intrinsics = Intrinsics.from_hfov(self.width, self.height, math.radians(cam.hfov_deg))
        self.T_base_cam = camera_mount(cam.mount_height, math.radians(cam.pitch_down_deg))
        self.house: Optional[tuple[int, Optional[int]]] = None
        self.renderer: Optional[Renderer] = None

    def render(self, question: dict, x: float, y: float, yaw: float) -> tuple[np.ndarray, ...]:
        """(rgb, depth, instance ids, triangle ids) of Renderer.render_triangles with the robot base at (x, y) m,
        heading yaw rad (world frame), in the house of a question record (its "house_seed" and "n_rooms", built
        as an episode of it builds it)."""
        house = (int(question["house_seed"]), question.get("n_rooms"))
        if house != self.house:
            scene = generate_house(house[0], house[1], self.sim.house, self.sim.robot)
            self.renderer = Renderer(scene, self.intrinsics)
            self.house = house
        return self.renderer.render_triangles(base_pose(x, y, yaw) @ self.T_base_cam)
