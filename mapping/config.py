"""Typed, validated configuration of the scene map (TSDF, 2-D grids, frontiers)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Annotated, Optional

from mapping.bounds import NonNegative, Positive, PositiveInt, Range, check_bounds


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
    ground_shadow: ground points in, or at most this far (horizontally) behind, a cell with an obstacle hit of
        the same frame, seen from the camera, do not count as ground (depth noise scatters the foot of a wall or a
        cabinet behind its surface); 0 = off.
    explored_fov_fraction: central fraction of the image width that marks cells explored (and that gives
        ground points: see mapping.binning.project_classify).
    explored_range: only points within this horizontal distance of the camera mark explored.
    min_frontier_size: frontier clusters shorter than this (cells * voxel_size) are dropped.
    max_frontier_size: longer clusters are split into compact pieces of about this size.
    frontier_normal_window: margin around a cluster used to estimate its outward normal.
    robot_snap_radius: if the robot's cell is not navigable, the navigable component is
        taken from the nearest candidate cell within this distance.
    grid_margin: the 2-D grids grow in steps that leave at least this margin.
    max_extent: the robot's positions must fit in a square of this side (the map covers at most that plus
        the sensor range): a frame beyond it is an error, not a grid of gigabytes. Sized for buildings.
    max_pose_jump: a frame whose base position is further than this from the previous frame's is an error
        naming the jump (a localisation jump, or frames of another map).
    """

    voxel_size: Annotated[float, Range(ge=0.02, le=1.0)] = 0.1
    block_resolution: int = 8
    trunc_voxels: Positive = 4.0
    min_depth: NonNegative = 0.1
    max_depth: Annotated[float, Range(gt=0, le=50.0)] = 5.0
    pixel_stride: PositiveInt = 1
    floor_height: Optional[float] = None
    camera_height: Positive = 1.5
    floor_tolerance: NonNegative = 0.1
    obstacle_min_height: Positive = 0.15
    robot_height: Positive = 1.6
    robot_radius: NonNegative = 0.2
    footprint_radius: NonNegative = 0.3
    obstacle_gain: Positive = 1.0
    clear_gain: Positive = 0.25
    evidence_max: Positive = 4.0
    min_obstacle_points: PositiveInt = 2
    ground_shadow: Annotated[float, Range(ge=0, le=2.0)] = 0.25
    explored_fov_fraction: Annotated[float, Range(gt=0, le=1)] = 0.8
    explored_range: Positive = 3.0
    min_frontier_size: NonNegative = 0.5
    max_frontier_size: Positive = 3.0
    frontier_normal_window: NonNegative = 1.0
    robot_snap_radius: NonNegative = 0.5
    grid_margin: Positive = 2.0
    max_extent: Annotated[float, Range(gt=0, le=5000.0)] = 200.0
    max_pose_jump: Positive = 25.0

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.max_frontier_size <= self.min_frontier_size:
            raise ValueError(f"MapConfig.max_frontier_size ({self.max_frontier_size}) must be > "
                             f"min_frontier_size ({self.min_frontier_size})")
        if self.block_resolution not in (4, 8, 16, 32):
            raise ValueError(f"MapConfig.block_resolution must be 4, 8, 16 or 32, got {self.block_resolution}")
        if self.min_depth >= self.max_depth:
            raise ValueError(f"MapConfig.min_depth ({self.min_depth}) must be < max_depth ({self.max_depth})")
        if not self.obstacle_min_height < self.robot_height:
            raise ValueError("MapConfig needs 0 < obstacle_min_height < robot_height, got "
                             f"{self.obstacle_min_height} and {self.robot_height}")

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
