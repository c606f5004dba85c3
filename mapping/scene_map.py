"""SceneMap: posed RGB-D frames -> sparse TSDF + 2-D grids + navigable area + frontiers.

World frame z up. Grids: row = y, col = x at the voxel resolution; `spec` (GridSpec)
converts world <-> cell and changes when the map grows.
"""
from __future__ import annotations

import json
import math
import os
import time
from typing import Optional

import numpy as np

from mapping.config import MapConfig
from mapping.frame import Frame
from mapping.frontiers import Frontier, extract_frontiers
from mapping.grid import GridSpec
from mapping.inflation import component_at, inflate
from mapping.occupancy import OccupancyGrids
from mapping.projection import check_frame, clean_depth, robot_pose_xy_yaw
from mapping.tsdf import TSDFVolume

_FORMAT = "confident-eqa-scene-map/1"


def _readonly(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


class SceneMap:
    """Incremental map of one episode. Call `integrate(frame)` for every frame."""

    def __init__(self, config: Optional[MapConfig] = None) -> None:
        self.config = config if config is not None else MapConfig()
        c = self.config
        self.tsdf = TSDFVolume(c.voxel_size, c.block_resolution, c.trunc_voxels)
        self._grids = OccupancyGrids(c)
        self.floor_z: Optional[float] = c.floor_height
        self.robot_path: list[tuple[float, float, float]] = []  # (x, y, yaw) per frame
        self._path_box: tuple[int, float, float, float, float] = (0, math.inf, math.inf, -math.inf, -math.inf)
        self._relocated = False  # the next frame may be far from the last (expect_relocation)
        self._nav_cache: Optional[np.ndarray] = None
        self._frontier_cache: Optional[list[Frontier]] = None
        self.last_timing: dict[str, float] = {}  # seconds spent in the last integrate, by stage

    # -- input ------------------------------------------------------------------------------
    def integrate(self, frame: Frame) -> None:
        """Fuse a posed frame into the TSDF and the 2-D grids.

        Raises ValueError for a malformed frame (image/intrinsics size mismatch, NaN or
        non-rigid pose), for a base position further than max_pose_jump from the previous
        frame's, and for one that would make the robot's positions span more than max_extent.
        Invalid depth pixels (0, NaN, inf, negative, beyond max_depth) are ignored, however
        few valid ones are left; a frame without valid depth changes nothing.
        """
        check_frame(frame)
        c = self.config
        depth = clean_depth(frame.depth, c.min_depth, c.max_depth)
        if not np.any(depth > 0):
            return
        x, y, yaw = robot_pose_xy_yaw(frame)
        self._check_position(x, y, frame.stamp)
        if self.floor_z is None:
            if frame.T_world_base is not None:
                self.floor_z = float(frame.T_world_base[2, 3])
            else:
                self.floor_z = float(frame.T_world_cam[2, 3]) - c.camera_height
        t0 = time.perf_counter()
        self.tsdf.integrate(depth, frame.rgb, frame.intrinsics.matrix(), frame.T_world_cam, c.max_depth)
        t1 = time.perf_counter()
        self._grids.update(depth, frame.intrinsics, frame.T_world_cam, self.floor_z, (x, y))
        self.last_timing = {"tsdf_s": t1 - t0, "grids_s": time.perf_counter() - t1}
        self.robot_path.append((x, y, yaw))
        self._relocated = False
        self._nav_cache = None
        self._frontier_cache = None

    def expect_relocation(self) -> None:
        """The next frame may lie further than max_pose_jump from the last one (the robot moved while the map
        was not fed, e.g. between two questions); max_extent still applies."""
        self._relocated = True

    def _check_position(self, x: float, y: float, stamp: float) -> None:
        """ValueError for a pose jump or a position that stretches the map beyond max_extent (world metres)."""
        c = self.config
        if self.robot_path and not self._relocated:
            px, py, _ = self.robot_path[-1]
            jump = math.hypot(x - px, y - py)
            if jump > c.max_pose_jump:
                raise ValueError(f"pose jump of {jump:.1f} m between frames (to ({x:.1f}, {y:.1f}) at stamp "
                                 f"{stamp:.3f} s from ({px:.1f}, {py:.1f})), more than map.max_pose_jump "
                                 f"{c.max_pose_jump:g} m: a localisation jump, or a frame of another map")
        x0, y0, x1, y1 = self._path_bounds()
        span = max(max(x1, x) - min(x0, x), max(y1, y) - min(y0, y))
        if span > c.max_extent:
            raise ValueError(f"the robot's positions would span {span:.1f} m with ({x:.1f}, {y:.1f}), more than "
                             f"map.max_extent {c.max_extent:g} m")

    def _path_bounds(self) -> tuple[float, float, float, float]:
        """(min x, min y, max x, max y) of robot_path, extended by the entries added since the last call (all of
        them again if the path was replaced by a shorter one)."""
        n, x0, y0, x1, y1 = self._path_box
        if n > len(self.robot_path):
            n, x0, y0, x1, y1 = 0, math.inf, math.inf, -math.inf, -math.inf
        for px, py, _ in self.robot_path[n:]:
            x0, y0, x1, y1 = min(x0, px), min(y0, py), max(x1, px), max(y1, py)
        self._path_box = (len(self.robot_path), x0, y0, x1, y1)
        return x0, y0, x1, y1

    # -- grids (read-only views; they are replaced when the map grows) ----------------------
    @property
    def spec(self) -> GridSpec:
        """Current grid geometry (origin, resolution, shape)."""
        return self._grids.grid.spec

    @property
    def occupied(self) -> np.ndarray:
        """Bool grid: an obstacle between obstacle_min_height and robot_height."""
        return _readonly(self._grids.grid["occupied"])

    @property
    def free(self) -> np.ndarray:
        """Bool grid: ground observed and no obstacle above it."""
        return _readonly(self._grids.grid["free"])

    @property
    def explored(self) -> np.ndarray:
        """Bool grid: observed within the central image part and explored_range."""
        return _readonly(self._grids.grid["explored"])

    @property
    def evidence(self) -> np.ndarray:
        """Float grid of obstacle evidence (occupied where > 0)."""
        return _readonly(self._grids.grid["evidence"])

    @property
    def robot_xy(self) -> Optional[tuple[float, float]]:
        """Latest robot position (world metres), None before the first frame."""
        return (self.robot_path[-1][0], self.robot_path[-1][1]) if self.robot_path else None

    def _is_default_radius(self, robot_radius: Optional[float]) -> bool:
        """Whether `robot_radius` (m) is the config's, whose navigable cells and frontiers are cached."""
        return robot_radius is None or math.isclose(robot_radius, self.config.robot_radius)

    def navigable(self, robot_radius: Optional[float] = None) -> np.ndarray:
        """Bool grid: free cells a robot of robot_radius (default: config) centred there
        would not collide from, restricted to the 8-connected component holding the robot."""
        if self._grids.grid.empty or not self.robot_path:
            return np.zeros(self.spec.shape, dtype=bool)
        default = self._is_default_radius(robot_radius)
        if default and self._nav_cache is not None:
            return self._nav_cache
        g = self._grids.grid
        if default:
            blocked = g["inflated"]
        else:
            if robot_radius < 0 or not math.isfinite(robot_radius):
                raise ValueError(f"robot_radius must be finite and >= 0, got {robot_radius}")
            blocked = inflate(g["occupied"], robot_radius, self.config.voxel_size)
        candidates = g["free"] & ~blocked
        rc = self.spec.world_to_cell(np.array(self.robot_xy))
        snap = int(math.ceil(self.config.robot_snap_radius / self.config.voxel_size))
        nav = component_at(candidates, (int(rc[0]), int(rc[1])), snap)
        nav.flags.writeable = False
        if default:
            self._nav_cache = nav
        return nav

    def frontiers(self, robot_radius: Optional[float] = None) -> list[Frontier]:
        """Frontier clusters of the current map on `navigable(robot_radius)` (default radius: cached until
        the next integrate)."""
        default = self._is_default_radius(robot_radius)
        if default and self._frontier_cache is not None:
            return self._frontier_cache
        if self._grids.grid.empty:
            found = []
        else:
            c = self.config
            found = extract_frontiers(self.navigable(robot_radius), self.explored, self.spec, c.min_frontier_size,
                                      c.frontier_normal_window, c.max_frontier_size)
        if default:
            self._frontier_cache = found
        return found

    def memory_bytes(self) -> dict[str, int]:
        """Bytes held by the map: 2-D grid layers and the TSDF voxel buffers."""
        g = self._grids.grid
        return {"grids": int(sum(g[name].nbytes for name in g.layer_names)), "tsdf": self.tsdf.memory_bytes()}

    # -- persistence ------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Every array of the map state (grids, TSDF, path, config) for saving."""
        out = self._grids.grid.state("grid__")
        out.update(self.tsdf.state())
        out["robot_path"] = np.array(self.robot_path, dtype=np.float64).reshape(-1, 3)
        out["floor_z"] = np.array(np.nan if self.floor_z is None else self.floor_z)
        out["config_json"] = np.array(json.dumps(self.config.to_dict()))
        out["format"] = np.array(_FORMAT)
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write the whole map state to one compressed .npz file."""
        with open(path, "wb") as f:
            np.savez_compressed(f, **self.state())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SceneMap":
        """Read a map written by `save`; raises ValueError for a file that is not one."""
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as exc:  # zip / npz decode errors
            raise ValueError(f"{path}: not a scene map file ({exc})") from exc
        with data:
            if "format" not in data or str(data["format"]) != _FORMAT:
                raise ValueError(f"{path}: not a scene map file (format {_FORMAT} expected)")
            config = MapConfig.from_dict(json.loads(str(data["config_json"])))
            m = cls(config)
            m._grids.grid.load_state(data, "grid__")
            m.tsdf = TSDFVolume.from_state(data)
            m.robot_path = [tuple(float(v) for v in row) for row in data["robot_path"]]
            fz = float(data["floor_z"])
            m.floor_z = None if math.isnan(fz) else fz
        return m
