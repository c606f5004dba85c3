"""Typed, validated configuration of the scene map (TSDF, 2-D grids, frontiers)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Optional


@dataclass(frozen=True)
class MapConfig:
    """Scene map parameters. Lengths in metres; heights are above the floor.

    voxel_size: TSDF voxel edge and 2-D cell size.
    block_resolution: TSDF voxels per block edge (open3d VoxelBlockGrid).
    trunc_voxels: TSDF truncation distance in voxels.
    min_depth / max_depth: depth outside [min_depth, max_depth] is ignored.
    pixel_stride: every n-th pixel (both axes) feeds the 2-D grids; the TSDF uses all pixels.
    floor_height: world z of the floor; None = from the first frame's base pose
        (or camera z minus `camera_height` when the frame carries no base pose).
    camera_height: camera height above the floor, used only for that fallback.
    floor_tolerance: points with height in [-floor_tolerance, obstacle_min_height) are ground.
    obstacle_min_height / robot_height: points with height in [obstacle_min_height,
        robot_height] are obstacles (everything the robot's body could hit).
    robot_radius: used to inflate obstacles for the navigable grid.
    footprint_radius: cells within this radius of the robot are ground and explored
        (the robot stands there; the camera cannot see right under itself).
    obstacle_gain / clear_gain / evidence_max: per-frame obstacle evidence update of a
        cell: +obstacle_gain when obstacle points fall in it, -clear_gain when only
        ground points do; clamped to [-evidence_max, evidence_max]; occupied when > 0.
    min_obstacle_points: points one frame must put into a cell to count as an obstacle hit.
    explored_fov_fraction: central fraction of the image width that marks cells explored.
    explored_range: only points within this horizontal distance of the camera mark explored.
    min_frontier_size: frontier clusters shorter than this (cells * voxel_size) are dropped.
    max_frontier_size: longer clusters are split into compact pieces of about this size.
    frontier_normal_window: margin around a cluster used to estimate its outward normal.
    robot_snap_radius: if the robot's cell is not navigable, the navigable component is
        taken from the nearest candidate cell within this distance.
    grid_margin: the 2-D grids grow in steps that leave at least this margin.
    """

    voxel_size: float = 0.1
    block_resolution: int = 8
    trunc_voxels: float = 4.0
    min_depth: float = 0.1
    max_depth: float = 5.0
    pixel_stride: int = 1
    floor_height: Optional[float] = None
    camera_height: float = 1.5
    floor_tolerance: float = 0.1
    obstacle_min_height: float = 0.15
    robot_height: float = 1.6
    robot_radius: float = 0.2
    footprint_radius: float = 0.3
    obstacle_gain: float = 1.0
    clear_gain: float = 0.25
    evidence_max: float = 4.0
    min_obstacle_points: int = 2
    explored_fov_fraction: float = 0.8
    explored_range: float = 3.0
    min_frontier_size: float = 0.5
    max_frontier_size: float = 3.0
    frontier_normal_window: float = 1.0
    robot_snap_radius: float = 0.5
    grid_margin: float = 2.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"MapConfig.{f.name} must be finite, got {value}")
        positive = ("voxel_size", "trunc_voxels", "max_depth", "robot_height", "obstacle_gain",
                    "clear_gain", "evidence_max", "explored_range", "grid_margin", "camera_height")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"MapConfig.{name} must be > 0, got {getattr(self, name)}")
        nonneg = ("min_depth", "floor_tolerance", "robot_radius", "footprint_radius",
                  "min_frontier_size", "frontier_normal_window", "robot_snap_radius")
        for name in nonneg:
            if getattr(self, name) < 0:
                raise ValueError(f"MapConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.max_frontier_size <= self.min_frontier_size:
            raise ValueError(f"MapConfig.max_frontier_size ({self.max_frontier_size}) must be > "
                             f"min_frontier_size ({self.min_frontier_size})")
        if self.voxel_size > 1.0:
            raise ValueError(f"MapConfig.voxel_size must be <= 1 m, got {self.voxel_size}")
        if self.block_resolution not in (4, 8, 16, 32):
            raise ValueError(f"MapConfig.block_resolution must be 4, 8, 16 or 32, got {self.block_resolution}")
        if self.min_depth >= self.max_depth:
            raise ValueError(f"MapConfig.min_depth ({self.min_depth}) must be < max_depth ({self.max_depth})")
        if not isinstance(self.pixel_stride, int) or self.pixel_stride < 1:
            raise ValueError(f"MapConfig.pixel_stride must be an integer >= 1, got {self.pixel_stride}")
        if not isinstance(self.min_obstacle_points, int) or self.min_obstacle_points < 1:
            raise ValueError(f"MapConfig.min_obstacle_points must be an integer >= 1, got {self.min_obstacle_points}")
        if not 0 < self.obstacle_min_height < self.robot_height:
            raise ValueError("MapConfig needs 0 < obstacle_min_height < robot_height, got "
                             f"{self.obstacle_min_height} and {self.robot_height}")
        if not 0.0 < self.explored_fov_fraction <= 1.0:
            raise ValueError(f"MapConfig.explored_fov_fraction must be in (0, 1], got {self.explored_fov_fraction}")
        if self.floor_height is not None and not math.isfinite(self.floor_height):
            raise ValueError(f"MapConfig.floor_height must be finite or None, got {self.floor_height}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MapConfig":
        """Build from a dict; unknown keys raise ValueError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown MapConfig keys: {unknown}")
        return cls(**data)
