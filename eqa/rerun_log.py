"""Optional rerun-sdk recording of an episode (.rrd): camera images, map, trajectory, frontiers."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np


def rerun_available() -> bool:
    try:
        import rerun  # noqa: F401
    except ImportError:
        return False
    return True


class RerunLogger:
    """Writes one .rrd file per episode; every method is a no-op-free real log call."""

    def __init__(self, path: str | Path, recording_id: str):
        import rerun as rr

        self._rr = rr
        self.rec = rr.RecordingStream("confident_eqa", recording_id=recording_id)
        self.rec.save(str(path))
        self.rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)

    def log_frame(self, step: int, frame) -> None:
        rr = self._rr
        self.rec.set_time("step", sequence=step)
        T = frame.T_world_cam
        k = frame.intrinsics
        self.rec.log("world/camera", rr.Transform3D(translation=T[:3, 3], mat3x3=T[:3, :3]))
        self.rec.log("world/camera", rr.Pinhole(image_from_camera=k.matrix(), resolution=[k.width, k.height],
                                                camera_xyz=rr.ViewCoordinates.RDF))
        self.rec.log("world/camera/rgb", rr.Image(frame.rgb))
        self.rec.log("world/camera/depth", rr.DepthImage(frame.depth, meter=1.0))

    def log_decision(self, step: int, map_image: Optional[np.ndarray], path_xy: np.ndarray, frontiers_xy: np.ndarray,
                     goal_xy: Optional[np.ndarray]) -> None:
        rr = self._rr
        self.rec.set_time("step", sequence=step)
        if map_image is not None:
            self.rec.log("map/topdown", rr.Image(map_image))
        if len(path_xy) > 1:
            pts = np.column_stack([path_xy, np.zeros(len(path_xy))])
            self.rec.log("world/trajectory", rr.LineStrips3D([pts], colors=[[40, 90, 230]]))
        if len(frontiers_xy):
            pts = np.column_stack([frontiers_xy, np.zeros(len(frontiers_xy))])
            self.rec.log("world/frontiers", rr.Points3D(pts, colors=[[230, 30, 30]], radii=0.1))
        if goal_xy is not None:
            self.rec.log("world/goal", rr.Points3D([[goal_xy[0], goal_xy[1], 0.0]], colors=[[0, 200, 0]], radii=0.15))

    def close(self) -> None:
        self.rec.flush()
        self.rec.disconnect()
