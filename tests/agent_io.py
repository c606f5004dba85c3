"""Frames on disk and decisions as JSON, for the agent tests (imports nothing from the simulator)."""
from pathlib import Path

import numpy as np

from mapping.frame import Frame, Intrinsics


def save_frames(path: Path, frames) -> None:
    """Frames as plain arrays, as a recorder of a real camera would keep them (no instance ids)."""
    k = frames[0].intrinsics
    np.savez(path, rgb=np.stack([f.rgb for f in frames]), depth=np.stack([f.depth for f in frames]),
             T_world_cam=np.stack([f.T_world_cam for f in frames]),
             T_world_base=np.stack([f.T_world_base for f in frames]), stamp=np.array([f.stamp for f in frames]),
             intrinsics=np.array([k.fx, k.fy, k.cx, k.cy, k.width, k.height]))


def load_frames(path: Path) -> list[Frame]:
    z = np.load(path)
    fx, fy, cx, cy, w, h = z["intrinsics"]
    k = Intrinsics(float(fx), float(fy), float(cx), float(cy), int(w), int(h))
    return [Frame(z["rgb"][i], z["depth"][i], k, z["T_world_cam"][i], float(z["stamp"][i]),
                  T_world_base=z["T_world_base"][i]) for i in range(len(z["stamp"]))]


def decision_json(decision) -> dict:
    """A decision as JSON: its action, goal or angle, and its record without timings (the step's and each
    view's model seconds)."""
    out = {"action": decision.action.value, "angle": decision.angle, "max_distance": decision.max_distance,
           "goal": None if decision.T_world_base is None else np.asarray(decision.T_world_base).tolist()}
    if decision.record is not None:
        record = {k: v for k, v in decision.record.to_json().items() if k != "timings"}
        record["views"] = [{k: v for k, v in view.items() if k != "vlm_s"} for view in record["views"]]
        out["record"] = record
    return out
