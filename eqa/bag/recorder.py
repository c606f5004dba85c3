"""Recording an episode as a rosbag2 folder (metadata.yaml + MCAP or sqlite3), through rosbags' writer.

`BagRecorder` is an episode tap (eqa.episode.run_episode's `tap`): it sees every frame the agent is given,
each decision and the end, whatever the driver (the built-in simulator, the ROS 2 node). Topics:

- sensors, as a robot publishes them: colour `sensor_msgs/Image` (rgb8), depth `sensor_msgs/Image` (32FC1,
  metres, NaN invalid), `sensor_msgs/CameraInfo`, `nav_msgs/Odometry` (the base in the world frame), `/tf`
  (world -> base at each frame) and `/tf_static` (base -> camera optical frame);
- the agent's outputs, as JSON `std_msgs/String`: `/eqa/episode` (question, choices, seed, floor area, the run
  config and the VLM), `/eqa/step` (the frames and the previous move's outcome given to each agent call, with
  the exact stamps and poses: what `eqa replay --check` re-runs), `/eqa/decision`, `/eqa/prediction_set`,
  `/eqa/answer`; the value map and the occupancy map as `nav_msgs/OccupancyGrid` after each decision.

Log times are the frame stamps (ns); an agent call's messages follow its newest frame by a few ns.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np

from eqa.bag import messages as m
from eqa.records import clean
from mapping.frame import Frame, pose_xy_yaw, wrap_angle

STORAGES = ("mcap", "sqlite3")
SCHEMA = "confident-eqa-bag"
SCHEMA_VERSION = 1


class Topics:
    """The recorded topic names (the eqa_node's default camera topics, so `ros2 bag play` feeds the node)."""

    RGB = "/camera/color/image_raw"
    DEPTH = "/camera/aligned_depth_to_color/image_raw"
    CAMERA_INFO = "/camera/color/camera_info"
    ODOM = "/odom"
    TF = "/tf"
    TF_STATIC = "/tf_static"
    EPISODE = "/eqa/episode"
    STEP = "/eqa/step"
    DECISION = "/eqa/decision"
    PREDICTION_SET = "/eqa/prediction_set"
    ANSWER = "/eqa/answer"
    VALUE_MAP = "/eqa/value_map"
    MAP = "/eqa/map"


WORLD_FRAME, BASE_FRAME, CAMERA_FRAME = "map", "base_link", "camera_color_optical_frame"


def pose_list(T: Optional[np.ndarray]) -> Optional[list[float]]:
    """A 4x4 pose as 16 floats (row-major; JSON keeps float64 exactly), None for None."""
    return None if T is None else [float(v) for v in np.asarray(T, dtype=float).reshape(-1)]


def list_pose(values: Optional[list]) -> Optional[np.ndarray]:
    return None if values is None else np.asarray(values, dtype=float).reshape(4, 4)


class BagRecorder:
    """Writes an episode to the rosbag2 folder `path` (which must not exist). storage: "mcap" (zstd-compressed
    chunks) or "sqlite3". run_config: the run's config as a dict (eqa.sim_driver.SimRun.to_dict), kept in
    /eqa/episode so that `eqa replay --check` rebuilds the same agent."""

    def __init__(self, path: str | Path, storage: str = "mcap", run_config: Optional[dict] = None) -> None:
        m.typestore()  # a clear ImportError without rosbags
        from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

        if storage not in STORAGES:
            raise ValueError(f"bag storage must be one of {STORAGES}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists: a bag is written to a new folder")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.writer = Writer(self.path, version=9, storage_plugin=plugin)
        if storage == "mcap":
            self.writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self.writer.open()
        self.run_config = run_config
        self._connections: dict[str, object] = {}
        self._last_ns = -1
        self._calls = 0
        self._T_base_cam: Optional[np.ndarray] = None
        self._previous: Optional[tuple[float, np.ndarray]] = None  # (stamp, T_world_base) of the last frame
        self.closed = False

    # -- the episode tap ------------------------------------------------------------------------------------
    def start(self, episode, agent) -> None:
        """/eqa/episode: what the episode asks and the config that answers it."""
        q = episode.question
        data = {"schema": SCHEMA, "version": SCHEMA_VERSION, "episode_id": episode.episode_id,
                "question": q.text if q is not None else None, "choices": list(q.choices) if q is not None else None,
                "seed": episode.seed, "floor_area_m2": episode.floor_area_m2, "run": self.run_config,
                "method": agent.method.name,
                "continues_map": bool(agent.map is not None and len(agent.map.robot_path) > 0),
                "vlm": agent.vlm.info.to_record() if agent.vlm is not None else None}
        self._json(Topics.EPISODE, data, 0)

    def step_input(self, frames: list[Frame], outcome) -> None:
        """The frames of one agent call (oldest first) and the outcome given with them: sensor messages, then
        /eqa/step with their exact stamps and poses."""
        entries = []
        for frame in frames:
            ns = max(m.stamp_ns(frame.stamp), self._last_ns + 10)
            self._frame(frame, ns)
            entries.append({"stamp": float(frame.stamp), "ns": ns, "T_world_cam": pose_list(frame.T_world_cam),
                            "T_world_base": pose_list(frame.T_world_base)})
        data = {"call": self._calls, "frames": entries,
                "outcome": asdict(outcome) if outcome is not None else None}
        self._json(Topics.STEP, data, self._last_ns + 1)
        self._calls += 1

    def decision(self, decision, agent) -> None:
        """/eqa/decision (and the prediction set and the maps when the decision has a record)."""
        record = decision.record
        ns = self._last_ns + 2
        self._json(Topics.DECISION, {"call": self._calls - 1, **decision_json(decision)}, ns)
        if record is None:
            return
        if record.conformal is not None:
            self._json(Topics.PREDICTION_SET, {"step": record.step, "stamp": record.stamp,
                                               **clean(asdict(record.conformal))}, ns)
        self._maps(agent, ns)

    def write_frames(self, frames: list[Frame]) -> None:
        """Sensor messages only (no agent): a robot's recording without the agent's topics."""
        for frame in frames:
            self._frame(frame, max(m.stamp_ns(frame.stamp), self._last_ns + 10))

    def finish(self, summary: dict, agent) -> None:
        """/eqa/answer: the episode summary (answer, prediction set, stop reason)."""
        self._json(Topics.ANSWER, clean(summary), self._last_ns + 3)

    def close(self) -> None:
        """Finish the bag (metadata.yaml and the MCAP summary); safe to call twice."""
        if not self.closed:
            self.closed = True
            self.writer.close()

    # -- helpers --------------------------------------------------------------------------------------------
    def _write(self, topic: str, msgtype: str, msg, ns: int) -> None:
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._connections[topic] = self.writer.add_connection(topic, msgtype, typestore=m.typestore())
        self.writer.write(conn, ns, m.serialize(msg, msgtype))
        self._last_ns = max(self._last_ns, ns)

    def _json(self, topic: str, data: dict, ns: int) -> None:
        self._write(topic, m.STRING, m.string_msg(json.dumps(data, allow_nan=False)), max(ns, 0))

    def _frame(self, frame: Frame, ns: int) -> None:
        self._write(Topics.RGB, m.IMAGE, m.rgb_msg(frame.rgb, ns, CAMERA_FRAME), ns)
        self._write(Topics.DEPTH, m.IMAGE, m.depth_msg(frame.depth, ns, CAMERA_FRAME), ns)
        self._write(Topics.CAMERA_INFO, m.CAMERA_INFO, m.camera_info_msg(frame.intrinsics, ns, CAMERA_FRAME), ns)
        T_wb = frame.T_world_base
        if T_wb is None:  # no base pose: the camera hangs from the world frame directly
            self._write(Topics.TF, m.TF_MESSAGE, m.tf_msg([(WORLD_FRAME, CAMERA_FRAME, frame.T_world_cam)], ns), ns)
            return
        T_base_cam = np.linalg.inv(T_wb) @ frame.T_world_cam
        transforms = [(WORLD_FRAME, BASE_FRAME, T_wb)]
        if self._T_base_cam is None:
            self._T_base_cam = T_base_cam
            self._write(Topics.TF_STATIC, m.TF_MESSAGE, m.tf_msg([(BASE_FRAME, CAMERA_FRAME, T_base_cam)], ns), ns)
        elif not np.allclose(T_base_cam, self._T_base_cam, atol=1e-6):  # a moving camera: timed transforms
            transforms.append((BASE_FRAME, CAMERA_FRAME, T_base_cam))
        self._write(Topics.TF, m.TF_MESSAGE, m.tf_msg(transforms, ns), ns)
        self._write(Topics.ODOM, m.ODOMETRY, m.odometry_msg(T_wb, ns, WORLD_FRAME, BASE_FRAME,
                                                            self._velocity(frame.stamp, T_wb)), ns)
        self._previous = (frame.stamp, np.asarray(T_wb, dtype=float))

    def _velocity(self, stamp: float, T_wb: np.ndarray) -> tuple[float, float]:
        """(m/s, rad/s) since the previous frame (0 for the first)."""
        if self._previous is None or stamp <= self._previous[0]:
            return 0.0, 0.0
        t0, T0 = self._previous
        x0, y0, yaw0 = pose_xy_yaw(T0)
        x1, y1, yaw1 = pose_xy_yaw(T_wb)
        dt = stamp - t0
        return float(np.hypot(x1 - x0, y1 - y0) / dt), float(wrap_angle(yaw1 - yaw0) / dt)

    def _maps(self, agent, ns: int) -> None:
        from eqa.ros.viz import occupancy_cells, value_cells

        scene = agent.map
        if scene is not None and scene.spec.shape[0]:
            cells = occupancy_cells(scene.occupied, scene.free, scene.explored)
            self._write(Topics.MAP, m.OCCUPANCY_GRID, m.occupancy_grid_msg(cells, scene.spec, ns, WORLD_FRAME), ns)
        vm = agent.value_map
        if vm is not None and vm.spec.shape[0]:
            cells = value_cells(vm.value, vm.weight)
            self._write(Topics.VALUE_MAP, m.OCCUPANCY_GRID, m.occupancy_grid_msg(cells, vm.spec, ns, WORLD_FRAME), ns)


def decision_json(decision) -> dict:
    """A decision as /eqa/decision holds it (without the agent call's index); `eqa replay --check` compares these."""
    record = decision.record
    return json.loads(json.dumps({
        "step": decision.step, "action": decision.action.value,
        "reason": decision.reason.value if decision.reason is not None else None,
        "angle": float(decision.angle), "max_distance": float(decision.max_distance),
        "T_world_base": pose_list(decision.T_world_base),
        "record": record_json(record) if record is not None else None}))


def record_json(record) -> dict:
    """A decision's record as JSON, without what differs between runs of the same decision (timings, VLM
    latencies) or what the driver adds after it (outcome) or only a simulator knows (ground truth)."""
    data = record.to_json()
    for key in ("timings", "outcome", "truth"):
        data.pop(key, None)
    for view in data.get("views", []):
        view.pop("vlm_s", None)
    return data
