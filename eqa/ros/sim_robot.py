"""`sim_robot`: the built-in simulator as a ROS 2 robot, so the whole EQA loop runs on a laptop.

It publishes the camera (colour rgb8, depth 32FC1 or 16UC1, CameraInfo), odometry (ground truth, world ->
base), /tf and /tf_static (when tf2_msgs is installed) and serves Nav2's NavigateToPose action (when nav2_msgs
is installed) and /goal_pose by driving the disc robot along its collision-checked shortest path (sim.env).

rate_hz 0 (exact): it publishes exactly the frames the in-process simulator captures, stamped in simulated time
with /clock (run the eqa_node with use_sim_time): one per capture_spacing along a move and one after each
move and turn, each with an odometry sample at its stamp (moving along the way, standing at the end), plus
odometry at every vertex of the driven path. Between goals the current frame is repeated once a second.
rate_hz > 0 (streaming): the camera streams at that rate in ROS time while the robot drives at its speed.
A goal at the robot's position is a turn in place. A goal that cannot be reached ends ABORTED where the robot
got to; one cut short by the per-goal distance (agent.planner.max_move_per_step) ends SUCCEEDED there.
"""
from __future__ import annotations

import math
import threading
from typing import Optional

import numpy as np

from eqa.ros.config import SimRobotConfig
from eqa.ros.convert import (camera_info, depth_image, fill_pose, fill_transform, pose_matrix, rgb_image,
                             seconds_stamp)
from mapping.frame import Frame, base_pose, pose_xy_yaw, wrap_angle

NODE_NAME = "sim_robot"


def make_sim_robot(**kwargs):
    """The SimRobot node (built on import of rclpy, so this module imports without ROS)."""
    from nav_msgs.msg import Odometry
    from rclpy.action import ActionServer, CancelResponse, GoalResponse
    from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, Image

    from eqa.ros.params import declare_config
    from eqa.sim_driver import load_sim_run
    from sim.env import SimEnv, SimEpisode

    class SimRobot(Node):
        def __init__(self) -> None:
            super().__init__(NODE_NAME, **kwargs)
            self.config = cfg = declare_config(self, SimRobotConfig)
            run = load_sim_run(cfg.method, cfg.run_overrides())
            self.max_move = run.method.agent.planner.max_move_per_step
            self.env = SimEnv.from_seed(cfg.seed, run.sim, n_rooms=cfg.n_rooms or None)
            start = tuple(cfg.start) if cfg.start else None
            self.frame = self.env.reset(SimEpisode(start=start, seed=cfg.seed))
            self.exact = cfg.rate_hz == 0
            self._lock = threading.Lock()  # one motion at a time; the env is not thread-safe
            self._motion: Optional[dict] = None  # streaming: the goal being driven to
            self._t0 = self.get_clock().now().nanoseconds * 1e-9
            reliable = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
            t = cfg.topics
            self._rgb = self.create_publisher(Image, t.rgb, reliable)
            self._depth = self.create_publisher(Image, t.depth, reliable)
            self._info = self.create_publisher(CameraInfo, t.camera_info, reliable)
            self._odom = self.create_publisher(Odometry, t.odom, QoSProfile(depth=200,
                                                                         reliability=ReliabilityPolicy.RELIABLE))
            self._clock_pub = self.create_publisher(Clock, "/clock", 10) if self.exact else None
            self._tf = self._tf_static = None
            try:
                from tf2_msgs.msg import TFMessage

                if cfg.publish_tf:
                    self._tf = self.create_publisher(TFMessage, "/tf", QoSProfile(depth=200,
                                                                                 reliability=ReliabilityPolicy.RELIABLE))
                    self._tf_static = self.create_publisher(TFMessage, "/tf_static", QoSProfile(
                        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
                    self._publish_static_tf()
            except ImportError:
                pass
            group = ReentrantCallbackGroup()
            try:
                from nav2_msgs.action import NavigateToPose

                self._nav_type = NavigateToPose
                self._server = ActionServer(self, NavigateToPose, t.navigate_action, execute_callback=self._execute,
                                            goal_callback=lambda goal: GoalResponse.ACCEPT,
                                            cancel_callback=lambda handle: CancelResponse.ACCEPT,
                                            callback_group=group)
            except ImportError:
                self._server = None
                self.get_logger().warning("nav2_msgs is not installed: only /goal_pose is served")
            from geometry_msgs.msg import PoseStamped

            self.create_subscription(PoseStamped, t.goal_pose, self._on_goal_pose, 10, callback_group=group)
            timer_group = MutuallyExclusiveCallbackGroup()
            self.create_timer(1.0 / cfg.rate_hz if cfg.rate_hz else 1.0, self._tick, callback_group=timer_group)
            if self.exact:
                self._publish_state(self.frame, moving=False)
            x, y, yaw = pose_xy_yaw(self.env.robot_pose())
            self.get_logger().info(f"house {cfg.seed}: robot at ({x:.2f}, {y:.2f}, {yaw:.2f}); "
                                   f"{'exact frames' if self.exact else f'streaming at {cfg.rate_hz:g} Hz'}")

        # -- publishing --------------------------------------------------------------------------------------
        def _now(self) -> float:
            return self.get_clock().now().nanoseconds * 1e-9

        def _publish_static_tf(self) -> None:
            from geometry_msgs.msg import TransformStamped
            from tf2_msgs.msg import TFMessage

            cfg = self.config
            ts = TransformStamped()
            ts.header.frame_id, ts.child_frame_id = cfg.base_frame, cfg.camera_frame
            ts.header.stamp = seconds_stamp(0.0)
            fill_transform(ts.transform, self.env.T_base_cam)
            self._tf_static.publish(TFMessage(transforms=[ts]))

        def _publish_pose(self, T_world_base: np.ndarray, stamp: float, speed: float, turn_rate: float) -> None:
            cfg = self.config
            odom = Odometry()
            odom.header.frame_id, odom.child_frame_id = cfg.world_frame, cfg.base_frame
            odom.header.stamp = seconds_stamp(stamp)
            fill_pose(odom.pose.pose, T_world_base)
            odom.twist.twist.linear.x, odom.twist.twist.angular.z = float(speed), float(turn_rate)
            self._odom.publish(odom)
            if self._tf is not None:
                from geometry_msgs.msg import TransformStamped
                from tf2_msgs.msg import TFMessage

                ts = TransformStamped()
                ts.header.frame_id, ts.child_frame_id = cfg.world_frame, cfg.base_frame
                ts.header.stamp = odom.header.stamp
                fill_transform(ts.transform, T_world_base)
                self._tf.publish(TFMessage(transforms=[ts]))

        def _publish_frame(self, frame: Frame, stamp: float) -> None:
            cfg = self.config
            self._info.publish(camera_info(frame.intrinsics, stamp, cfg.camera_frame))
            self._depth.publish(depth_image(frame.depth, stamp, cfg.camera_frame, cfg.depth_encoding))
            self._rgb.publish(rgb_image(frame.rgb, stamp, cfg.camera_frame))

        def _publish_clock(self, stamp: float) -> None:
            if self._clock_pub is not None:
                self._clock_pub.publish(Clock(clock=seconds_stamp(stamp)))

        def _publish_state(self, frame: Frame, moving: bool) -> None:
            """Exact mode: a frame with an odometry sample at its stamp."""
            speed = self.env.config.robot.linear_speed if moving else 0.0
            self._publish_pose(frame.T_world_base, frame.stamp, speed, 0.0)
            self._publish_frame(frame, frame.stamp)
            self._publish_clock(frame.stamp)

        def _tick(self) -> None:
            """Exact: repeat the current frame (same stamp) for late subscribers. Streaming: drive one step of the
            current goal (if any) and publish the camera at the ROS time now."""
            with self._lock:
                if self.exact:
                    self._publish_state(self.frame, moving=False)
                    return
                dt = 1.0 / self.config.rate_hz
                moving = self._motion is not None and self._drive(dt)
                robot = self.env.config.robot
                speed, rate = (robot.linear_speed, 0.0) if moving == "move" else (
                    (0.0, robot.angular_speed) if moving == "turn" else (0.0, 0.0))
                stamp = self._now()
                self.env.observe()  # frames along a step: the stream replaces them
                frame = self.env.view(stamp)
                self._publish_pose(frame.T_world_base, stamp, speed, rate)
                self._publish_frame(frame, stamp)

        # -- motion ------------------------------------------------------------------------------------------
        def _drive(self, dt: float):
            """Streaming: one step towards the current goal; 'move', 'turn' or False when it ended."""
            m, robot = self._motion, self.env.config.robot
            if m["turn"] is not None:
                left = m["turn"] - m["turned"]
                step = math.copysign(min(abs(left), robot.angular_speed * dt), left)
                self.env.turn(step)
                m["turned"] += step
                if abs(m["turn"] - m["turned"]) < 1e-9:
                    self._finish("succeeded")
                return "turn"
            step = min(robot.linear_speed * dt, self.max_move - m["moved"])
            result = self.env.move_to(m["goal"], step)
            m["moved"] += result.distance
            if result.reached or self.max_move - m["moved"] < 1e-6:
                self._finish("succeeded")
            elif result.blocked and result.distance < 1e-6:
                self._finish("failed")
            return "move"

        def _finish(self, status: str) -> None:
            m, self._motion = self._motion, None
            m["status"] = status
            m["done"].set()

        def _start(self, T_goal: np.ndarray) -> dict:
            """Carry out a goal (exact: at once; streaming: handed to the timer); returns its motion record."""
            x, y, yaw = pose_xy_yaw(self.env.robot_pose())
            gx, gy, gyaw = pose_xy_yaw(T_goal)
            turn = float(wrap_angle(gyaw - yaw)) if math.hypot(gx - x, gy - y) < 1e-6 else None
            motion = {"goal": T_goal, "turn": turn, "turned": 0.0, "moved": 0.0, "done": threading.Event(),
                      "status": None}
            with self._lock:
                if self._motion is not None:
                    self._finish("canceled")  # a new goal preempts the old one
                if self.exact:
                    motion["status"] = self._exact_motion(T_goal, turn)
                    motion["done"].set()
                else:
                    self._motion = motion
            return motion

        def _exact_motion(self, T_goal: np.ndarray, turn: Optional[float]) -> str:
            env, robot = self.env, self.env.config.robot
            stamp0, vertices = env.stamp, []
            if turn is not None:
                env.turn(turn)
                status = "succeeded"
            else:
                before = len(env.trajectory)
                result = env.move_to(T_goal, self.max_move)
                vertices = self._vertex_poses(np.asarray(env.trajectory[before - 1:]), stamp0, robot.linear_speed)
                status = "failed" if result.blocked else "succeeded"
            frames = env.observe()
            # the frames' own samples win where a vertex falls on a frame (its heading is the arriving one)
            taken = [f.stamp for f in frames]
            samples = [(t, T) for t, T in vertices if min(abs(t - s) for s in taken) > 1e-6]
            samples += [(f.stamp, f) for f in frames]
            for stamp, item in sorted(samples, key=lambda s: s[0]):
                if isinstance(item, Frame):
                    self._publish_state(item, moving=item is not frames[-1])
                else:
                    self._publish_pose(item, stamp, robot.linear_speed, 0.0)
            self.frame = frames[-1]
            return status

        @staticmethod
        def _vertex_poses(path: np.ndarray, stamp0: float, speed: float) -> list[tuple[float, np.ndarray]]:
            """(stamp, T_world_base) at the corners of a driven polyline (stamped by distance / speed), each
            heading along the segment that leaves it."""
            if len(path) < 3:
                return []
            seg = np.diff(path, axis=0)
            cum = np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
            out = []
            heading = np.arctan2(seg[:, 1], seg[:, 0])
            for k in range(1, len(path) - 1):
                if cum[k] >= cum[-1] - 1e-9 or cum[k] <= cum[k - 1]:
                    continue  # a repeated point (the end, or a zero-length segment): no sample of its own
                if abs(float(wrap_angle(heading[k] - heading[k - 1]))) < 1e-9:
                    continue  # a point on a straight stretch: the samples at its ends give the same path
                yaw = float(heading[k])
                out.append((stamp0 + cum[k] / speed, base_pose(float(path[k, 0]), float(path[k, 1]), yaw)))
            return out

        # -- goals -------------------------------------------------------------------------------------------
        def _execute(self, goal_handle):
            p = goal_handle.request.pose.pose
            result = self._nav_type.Result()
            try:
                T_goal = pose_matrix(p.position, p.orientation)
            except ValueError as err:
                result.error_code, result.error_msg = 1, f"bad goal pose: {err}"
                goal_handle.abort()
                return result
            motion = self._start(T_goal)
            while not motion["done"].wait(0.02):
                if goal_handle.is_cancel_requested:
                    with self._lock:
                        if self._motion is motion:
                            self._finish("canceled")
            status = motion["status"]
            if status == "canceled" and goal_handle.is_cancel_requested:
                goal_handle.canceled()
            elif status == "succeeded":
                goal_handle.succeed()
            else:
                result.error_code, result.error_msg = 1, "the goal cannot be reached"
                goal_handle.abort()
            return result

        def _on_goal_pose(self, msg) -> None:
            try:
                T_goal = pose_matrix(msg.pose.position, msg.pose.orientation)
            except ValueError as err:
                self.get_logger().warning(f"/goal_pose ignored: {err}")
                return
            threading.Thread(target=self._start, args=(T_goal,), daemon=True).start()

    return SimRobot()


def main(args=None) -> int:
    """Console script `sim_robot`: run the simulated robot until interrupted."""
    import rclpy

    from eqa.ros.spin import spin

    rclpy.init(args=args)
    spin(make_sim_robot(), num_threads=4)
    return 0
