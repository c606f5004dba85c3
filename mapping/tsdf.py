"""Sparse TSDF on open3d's tensor VoxelBlockGrid (CPU). Grows with what is seen.

Frames: depth z in metres (camera optical frame), pose T_world_cam. The legacy
ScalableTSDFVolume of open3d 0.20 returns empty meshes, hence the tensor API.
"""
from __future__ import annotations

import numpy as np
import open3d as o3d

o3c = o3d.core

_ATTRS = ("tsdf", "weight", "color")


class TSDFVolume:
    """Truncated signed distance volume with colour; voxel_size metres, blocks of
    block_resolution^3 voxels, truncation trunc_voxels * voxel_size."""

    def __init__(self, voxel_size: float = 0.1, block_resolution: int = 8, trunc_voxels: float = 4.0,
                 initial_blocks: int = 1000) -> None:
        self.voxel_size = float(voxel_size)
        self.block_resolution = int(block_resolution)
        self.trunc_voxels = float(trunc_voxels)
        self._device = o3c.Device("CPU:0")
        self._vbg = self._new_grid(initial_blocks)
        self.frames_integrated = 0

    def _new_grid(self, block_count: int) -> o3d.t.geometry.VoxelBlockGrid:
        return o3d.t.geometry.VoxelBlockGrid(
            _ATTRS, (o3c.float32, o3c.float32, o3c.float32), ((1), (1), (3)),
            self.voxel_size, self.block_resolution, max(int(block_count), 16), self._device)

    def integrate(self, depth: np.ndarray, rgb: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray,
                  max_depth: float) -> None:
        """Fuse one frame. depth: HxW float32 metres with invalid pixels already 0.
        rgb: HxWx3 uint8. K: 3x3 intrinsics. Does nothing if no pixel is valid."""
        if not np.any(depth > 0):
            return
        depth_img = o3d.t.geometry.Image(o3c.Tensor(np.ascontiguousarray(depth, dtype=np.float32)))
        color = np.ascontiguousarray(rgb, dtype=np.float32) * np.float32(1.0 / 255.0)
        color_img = o3d.t.geometry.Image(o3c.Tensor(color))
        K_t = o3c.Tensor(np.asarray(K, dtype=np.float64))
        extrinsic = o3c.Tensor(np.linalg.inv(np.asarray(T_world_cam, dtype=np.float64)))
        try:
            blocks = self._vbg.compute_unique_block_coordinates(
                depth_img, K_t, extrinsic, 1.0, float(max_depth), self.trunc_voxels)
        except RuntimeError as err:  # open3d samples the depth image sparsely and finds no block in sparse depth
            if "No block is touched" not in str(err):
                raise
            blocks = self._blocks_of_points(depth, K, T_world_cam)
        self._vbg.integrate(blocks, depth_img, color_img, K_t, K_t, extrinsic, 1.0, float(max_depth),
                            self.trunc_voxels)
        self.frames_integrated += 1

    def _blocks_of_points(self, depth: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray) -> o3c.Tensor:
        """The blocks around every valid depth pixel's world point (for depth too sparse for open3d's sampling)."""
        v, u = np.nonzero(depth > 0)
        z = depth[v, u].astype(np.float64)
        cam = np.column_stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z])
        world = cam @ np.asarray(T_world_cam)[:3, :3].T + np.asarray(T_world_cam)[:3, 3]
        pcd = o3d.t.geometry.PointCloud(o3c.Tensor(world.astype(np.float32)))
        return self._vbg.compute_unique_block_coordinates(pcd, self.trunc_voxels)

    @property
    def num_blocks(self) -> int:
        return int(self._vbg.hashmap().size())

    def memory_bytes(self) -> int:
        """Bytes of the allocated voxel buffers (capacity, not just active blocks)."""
        hm = self._vbg.hashmap()
        per_block = self.block_resolution ** 3 * 4 * 5  # tsdf + weight + rgb, float32
        return int(hm.capacity()) * (per_block + 3 * 4)

    def point_cloud(self) -> np.ndarray:
        """(N, 3) float64 surface points (world metres) at the TSDF zero crossing."""
        if self.num_blocks == 0:
            return np.zeros((0, 3))
        pcd = self._vbg.extract_point_cloud()
        if "positions" not in pcd.point:
            return np.zeros((0, 3))
        return pcd.point.positions.numpy().astype(np.float64)

    def triangle_mesh(self) -> o3d.geometry.TriangleMesh:
        """Legacy open3d mesh of the zero-level surface (empty if nothing integrated)."""
        if self.num_blocks == 0:
            return o3d.geometry.TriangleMesh()
        return self._vbg.extract_triangle_mesh().to_legacy()

    # -- persistence ---------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Active blocks as plain arrays: keys (M, 3) int32 block coords and voxel values."""
        hm = self._vbg.hashmap()
        active = hm.active_buf_indices().to(o3c.int64)
        out = {
            "tsdf__params": np.array([self.voxel_size, self.block_resolution, self.trunc_voxels]),
            "tsdf__frames": np.array(self.frames_integrated),
            "tsdf__keys": hm.key_tensor()[active].numpy(),
        }
        for i, name in enumerate(_ATTRS):
            out[f"tsdf__{name}"] = hm.value_tensor(i)[active].numpy()
        return out

    @classmethod
    def from_state(cls, data) -> "TSDFVolume":
        """Rebuild from `state()` arrays."""
        voxel_size, block_resolution, trunc = (float(v) for v in data["tsdf__params"])
        keys = np.asarray(data["tsdf__keys"], dtype=np.int32).reshape(-1, 3)
        vol = cls(voxel_size, int(block_resolution), trunc, initial_blocks=max(2 * len(keys), 1000))
        vol.frames_integrated = int(data["tsdf__frames"])
        if len(keys):
            hm = vol._vbg.hashmap()
            buf, ok = hm.activate(o3c.Tensor(keys))
            if not bool(ok.numpy().all()):
                raise ValueError("saved TSDF has duplicate blocks")
            buf = buf.to(o3c.int64)
            for i, name in enumerate(_ATTRS):
                values = np.asarray(data[f"tsdf__{name}"], dtype=np.float32)
                hm.value_tensor(i)[buf] = o3c.Tensor(values)
        return vol
