"""`eqa_node`: the EQA agent as a managed (lifecycle) ROS 2 node.

Its parameters (eqa.ros.config.EQANodeConfig) are read when the node starts (a bad value stops it with the
reason; later changes are refused: restart the node). configure loads the method, the VLM and the calibration
(a failure is reported in ~/status and the node stays unconfigured); activate subscribes to the camera,
odometry and TF. Publishers, services and the AskQuestion action server exist from the start; questions are
accepted while active and idle, one at a time. A question (action goal) runs one episode through the one loop
(eqa.episode.run_episode) with the robot as its Env (eqa.ros.ros_env.RosEnv): feedback per decision as it is
made, the answer as the result, the record and pictures in episodes_dir. The scene map persists across
questions until ~/reset_map; ~/pause cancels the navigation goal and holds the question until resumed (then
the goal is sent again); canceling the action stops the robot and ends the question; deactivating ends it
with an error.

Published (world frame): ~/map and ~/value_map (nav_msgs/OccupancyGrid, transient local), ~/markers
(frontiers, candidate points, goal, the prediction set and answer as text), ~/status (JSON std_msgs/String).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np

from eqa.ros.config import EQANodeConfig
from eqa.ros.convert import pose_stamped
from eqa.ros.frames import FrameAssembler
from eqa.ros.keyframes import KeyframeQueue
from eqa.ros.ros_env import EpisodeControl, EpisodeError, FrameFeed, RosEnv
from eqa.ros.viz import answer_text, decision_markers, occupancy_cells, occupancy_grid, status_json, value_cells
from mapping.frame import base_pose

NODE_NAME = "eqa_node"
ACTION_NAME = "ask_question"


def _lifecycle():
    from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

    return LifecycleNode, TransitionCallbackReturn


def make_node(**kwargs):
    """The EQANode (a class built on import of rclpy, so this module imports without ROS)."""
    LifecycleNode, Return = _lifecycle()
    from confident_eqa_interfaces.action import AskQuestion
    from rclpy.action import ActionServer, CancelResponse, GoalResponse
    from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from eqa.ros.params import declare_config

    class EQANode(LifecycleNode):
        def __init__(self) -> None:
            super().__init__(NODE_NAME, **kwargs)
            self.config: Optional[EQANodeConfig] = None
            self._lock = threading.Lock()
            self._control = EpisodeControl()
            self._question_lock = threading.Lock()
            self._state = "unconfigured"
            self._question: Optional[str] = None
            self._step: Optional[int] = None
            self._keep_map = False
            self._episodes = 0
            self._subs: list = []
            self._agent = None
            self._config_error = ""
            self._sensor_group = MutuallyExclusiveCallbackGroup()
            self._nav_group = ReentrantCallbackGroup()
            self._action_group = ReentrantCallbackGroup()
            self._busy = False  # a question is accepted or running (set under _goal_lock)
            self._goal_lock = threading.Lock()
            self.config = cfg = declare_config(self, EQANodeConfig)
            self.add_on_set_parameters_callback(self._refuse_parameter_changes)
            self._assembler = FrameAssembler(cfg)
            kf = cfg.keyframes
            self._feed = FrameFeed(KeyframeQueue(kf.min_distance, kf.min_angle, kf.capacity), self._stationary)
            self._create_interfaces()

        def _refuse_parameter_changes(self, params):
            from rcl_interfaces.msg import SetParametersResult

            names = [p.name for p in params if p.name != "use_sim_time"]
            if not names:
                return SetParametersResult(successful=True)
            return SetParametersResult(successful=False, reason=f"eqa_node reads its parameters at start: restart it "
                                                                f"to change {', '.join(names)}")

        # -- lifecycle -------------------------------------------------------------------------------------
        def on_configure(self, state):
            self._control.pause(False)
            self._control.canceled.clear()
            try:
                self._configure()
            except Exception as err:  # noqa: BLE001 - a bad setting or model: FAILURE with the reason, node lives
                self._config_error = f"{type(err).__name__}: {err}"
                self.get_logger().error(f"configure failed: {self._config_error}")
                return Return.FAILURE
            self._state = "inactive"
            self._publish_status()
            return Return.SUCCESS

        def on_activate(self, state):
            self._subscribe()
            self._state = "idle"
            ns = self.get_namespace().rstrip("/")
            self.get_logger().info(f"active: ask questions through the {ns}/{ACTION_NAME} action")
            return super().on_activate(state)

        def on_deactivate(self, state):
            """Ends a running question (aborted: "the node was deactivated") and stops the robot first."""
            self._state = "inactive"
            if self._question_lock.locked():
                self._control.canceled.set()
                self._navigator.cancel()
                if self._question_lock.acquire(timeout=self.config.navigation.server_timeout_s + 5.0):
                    self._question_lock.release()
            for sub in self._subs:
                self.destroy_subscription(sub)
            self._subs = []
            self._publish_status()
            return super().on_deactivate(state)

        def on_cleanup(self, state):
            if self._question_lock.locked():
                self.get_logger().error("cleanup refused: a question is still running")
                return Return.FAILURE
            self._agent = None
            self._state = "unconfigured"
            return Return.SUCCESS

        def on_shutdown(self, state):
            self._control.canceled.set()
            return Return.SUCCESS

        # -- configure ---------------------------------------------------------------------------------------
        def _configure(self) -> None:
            from eqa.sim_driver import load_sim_run, make_agent
            from vlm import make_vlm

            cfg = self.config
            run = load_sim_run(cfg.method, cfg.method_overrides_all())
            vlm = make_vlm(run.method.vlm) if run.method.vlm is not None else None
            self._agent, self._keep_map, self._config_error = make_agent(run, vlm), False, ""
            self._run_config = run.to_dict()
            self.get_logger().info(f"configured: method {run.method.name}, VLM "
                                   f"{vlm.info.model_id if vlm is not None else 'none'}, stop {run.method.stop.policy}")

        def _create_interfaces(self) -> None:
            """Publishers, services, the navigator and the action server (once; goals wait for activation)."""
            cfg = self.config
            latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                 reliability=ReliabilityPolicy.RELIABLE)
            from nav_msgs.msg import OccupancyGrid
            from std_msgs.msg import String
            from std_srvs.srv import SetBool, Trigger
            from visualization_msgs.msg import MarkerArray

            self._map_pub = self.create_lifecycle_publisher(OccupancyGrid, "~/map", latched)
            self._value_pub = self.create_lifecycle_publisher(OccupancyGrid, "~/value_map", latched)
            self._marker_pub = self.create_lifecycle_publisher(MarkerArray, "~/markers", 10)
            self._status_pub = self.create_publisher(String, "~/status", latched)
            self.create_service(SetBool, "~/pause", self._on_pause)
            self.create_service(Trigger, "~/reset_map", self._on_reset_map)
            if cfg.navigation.mode == "nav2":
                from eqa.ros.navigator import Nav2Navigator

                self._navigator = Nav2Navigator(self, cfg.topics.navigate_action, cfg.frames.world,
                                                cfg.navigation.server_timeout_s, self._nav_group)
            else:
                from eqa.ros.navigator import GoalPoseNavigator

                self._navigator = GoalPoseNavigator(self, cfg.topics.goal_pose, cfg.frames.world, self._robot_pose,
                                                    cfg.navigation.arrival_distance, cfg.navigation.arrival_angle,
                                                    cfg.navigation.stall_s)
            self._action = ActionServer(self, AskQuestion, ACTION_NAME, execute_callback=self._execute,
                                        goal_callback=self._on_goal, cancel_callback=self._on_cancel,
                                        callback_group=self._action_group)
            from rclpy.clock import Clock, ClockType

            # steady time: with use_sim_time, /clock stands still while a simulated robot does
            self.create_timer(1.0, self._publish_status, clock=Clock(clock_type=ClockType.STEADY_TIME))

        def _subscribe(self) -> None:
            """Poses first: when messages of several topics wait, the executor takes them in this order, so a
            frame's pose tends to arrive before the frame."""
            from nav_msgs.msg import Odometry
            from sensor_msgs.msg import CameraInfo, Image

            cfg = self.config
            reliable = cfg.sync.reliable_sensors
            odom_qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE if reliable
                                  else ReliabilityPolicy.BEST_EFFORT)
            self._subs.append(self.create_subscription(
                Odometry, cfg.topics.odom, lambda m: self._on_frames(self._assembler.add_odometry, m), odom_qos,
                callback_group=self._sensor_group))
            self._subscribe_tf()
            qos = QoSProfile(depth=cfg.sync.queue_depth, reliability=ReliabilityPolicy.RELIABLE if reliable
                             else ReliabilityPolicy.BEST_EFFORT)
            t = cfg.topics
            for stream, msg_type, topic in (("rgb", Image, t.rgb), ("depth", Image, t.depth),
                                            ("camera_info", CameraInfo, t.camera_info)):
                self._subs.append(self.create_subscription(
                    msg_type, topic, lambda m, s=stream: self._on_frames(self._assembler.add_image, s, m), qos,
                    callback_group=self._sensor_group))

        def _subscribe_tf(self) -> None:
            try:
                from tf2_msgs.msg import TFMessage
            except ImportError:
                if self.config.frames.pose_source == "tf":
                    self.get_logger().error("frames.pose_source is tf but tf2_msgs is not installed: build the "
                                            "interfaces (README) or use pose_source odom")
                return
            tf_qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
            static_qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                                    durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self._subs.append(self.create_subscription(
                TFMessage, "/tf", lambda m: self._on_frames(self._assembler.add_tf, m, False), tf_qos,
                callback_group=self._sensor_group))
            self._subs.append(self.create_subscription(
                TFMessage, "/tf_static", lambda m: self._on_frames(self._assembler.add_tf, m, True), static_qos,
                callback_group=self._sensor_group))

        # -- sensors -----------------------------------------------------------------------------------------
        def _on_frames(self, add, *args) -> None:
            """A sensor message: hand it to the assembler and the frames it completes to the feed."""
            with self._lock:
                frames = add(*args)
            for frame in frames:
                self._feed.put(frame)

        def _stationary(self, stamp: float) -> Optional[bool]:
            with self._lock:
                return self._assembler.stationary(stamp)

        def _robot_pose(self) -> Optional[np.ndarray]:
            with self._lock:
                stamp = self._assembler.newest_pose_stamp()
                if stamp is None:
                    return None
                try:
                    return self._assembler.base_pose(stamp)
                except LookupError:
                    return None

        def _sensor_stats(self) -> dict:
            with self._lock:
                return self._assembler.stats.to_json(self._assembler.unmatched())

        def _travelled(self, t0: float, t1: float) -> float:
            with self._lock:
                return self._assembler.travelled(t0, t1)

        def _now(self) -> float:
            return self.get_clock().now().nanoseconds * 1e-9

        # -- services ----------------------------------------------------------------------------------------
        def _on_pause(self, request, response):
            self._control.pause(bool(request.data))
            if request.data and self._question_lock.locked():
                self._navigator.cancel()
            response.success, response.message = True, "paused" if request.data else "running"
            self.get_logger().info(response.message)
            self._publish_status()
            return response

        def _on_reset_map(self, request, response):
            if self._question_lock.locked():
                response.success, response.message = False, "a question is running: cancel it first"
            else:
                self._keep_map = False
                response.success, response.message = True, "the map is cleared; the next question starts afresh"
            return response

        # -- the action --------------------------------------------------------------------------------------
        def _on_goal(self, goal):
            with self._goal_lock:
                if self._state != "idle" or self._busy:
                    self.get_logger().warning(f"question refused: the node is "
                                              f"{'answering' if self._busy else self._state}")
                    return GoalResponse.REJECT
                self._busy = True
            return GoalResponse.ACCEPT

        def _on_cancel(self, goal_handle):
            self._control.canceled.set()
            self._navigator.cancel()
            return CancelResponse.ACCEPT

        def _execute(self, goal_handle):
            try:
                with self._question_lock:
                    return self._answer(goal_handle)
            finally:
                with self._goal_lock:
                    self._busy = False
                self._publish_status()

        def _answer(self, goal_handle):
            from eqa.agent import EQAQuestion
            from eqa.episode import Episode, run_episode

            result = AskQuestion.Result(answer_index=-1)
            request = goal_handle.request
            try:
                question = EQAQuestion(request.question, tuple(request.choices))
            except ValueError as err:
                result.stop_reason, result.error = "error", str(err)
                goal_handle.abort()
                return result
            if goal_handle.is_cancel_requested:
                result.stop_reason = "canceled"
                goal_handle.canceled()
                return result
            if self._state != "idle" or self._agent is None:
                result.stop_reason, result.error = "error", f"the node is {self._state}"
                goal_handle.abort()
                return result
            cfg = self.config
            self._control.canceled.clear()
            self._feed.clear()
            self._state, self._question, self._step = "answering", question.text, None
            self._episodes += 1
            episode_id = time.strftime("%Y%m%d-%H%M%S") + f"-q{self._episodes}"
            env = RosEnv(self._feed, self._navigator, self._control, self._now, self._travelled, self._robot_pose,
                         cfg.sync.frame_timeout_s, cfg.sync.max_frame_age_s, cfg.navigation.timeout_s,
                         cfg.navigation.arrival_distance, cfg.navigation.arrival_angle)
            episode = Episode(episode_id, None, question, cfg.seed, cfg.floor_area_m2 or None)
            self.get_logger().info(f"question {episode_id}: {question.text} {list(question.choices)}")

            folder = Path(cfg.episodes_dir).expanduser() / episode_id

            def on_decision(record):
                self._step = record.step
                goal_handle.publish_feedback(self._feedback(record, question))
                self._publish_views(record, question)

            agent = self._agent
            self._publish_status()
            try:
                tap = None
                if cfg.record_bags:
                    from eqa.bag.recorder import BagRecorder

                    tap = BagRecorder(folder / "bag", run_config=self._run_config)
                summary = run_episode(env, agent, episode, folder, rerun=False, progress=False,
                                      on_decision=on_decision, keep_map=self._keep_map, tap=tap)
                if self._state != "answering":
                    raise EpisodeError("the node was deactivated")
            except Exception as err:  # noqa: BLE001 - any failure ends this question, not the node
                self._navigator.cancel()
                result.stop_reason, result.error = "error", f"{type(err).__name__}: {err}"
                self.get_logger().error(f"question {episode_id} failed: {result.error}")
                goal_handle.abort()
                return result
            finally:
                self._keep_map = agent.map is not None
                if self._state == "answering":
                    self._state = "idle"
            self._fill_result(result, summary, question)
            if summary.get("stop_reason") == "canceled" and goal_handle.is_cancel_requested:
                goal_handle.canceled()
            else:
                goal_handle.succeed()
            sensors = self._sensor_stats()
            self.get_logger().info(f"question {episode_id}: answer {result.answer_letter or '-'} "
                                   f"({result.answer or 'none'}), stop {result.stop_reason} after {result.steps} "
                                   f"steps; sensors so far: {sensors}")
            return result

        def _feedback(self, record, question):
            fb = AskQuestion.Feedback(step=record.step, budget=record.budget, decision=record.action.value)
            newest = record.views[-1] if record.views else None
            if newest is not None and newest.relevance is not None:
                fb.relevance = float(newest.relevance)
            if newest is not None and newest.p_answer is not None:
                fb.probabilities = [float(p) for p in newest.p_answer]
            if record.conformal is not None:
                fb.prediction_set = [int(i) for i in record.conformal.set]
            x, y, yaw = record.pose
            if record.action.value == "move" and record.plan is not None and record.plan.waypoint is not None:
                fb.goal = pose_stamped(base_pose(*record.plan.waypoint), self.config.frames.world, record.stamp)
            elif record.action.value == "turn":
                fb.goal = pose_stamped(base_pose(x, y, yaw + (record.turn or 0.0)), self.config.frames.world,
                                       record.stamp)
            return fb

        def _fill_result(self, result, summary: dict, question) -> None:
            index = summary.get("answer")
            probs = summary.get("answer_probabilities") or []
            if summary.get("answer_text") is not None:  # an open question's free-text answer
                result.answer = summary["answer_text"]
            if index is not None:
                result.answer_index, result.answer = int(index), question.choices[index]
                result.answer_letter = chr(ord("A") + int(index))
                result.confidence = float(probs[index]) if index < len(probs) else 0.0
            result.probabilities = [float(p) for p in probs]
            result.prediction_set = [int(i) for i in summary.get("final_set") or []]
            result.stop_reason = summary.get("stop_reason") or ""
            result.stop_policy = summary.get("stop_policy") or ""
            result.steps = int(summary.get("decisions", 0))
            result.path_length = float(summary.get("path_length_m", 0.0))

        # -- visualisation -------------------------------------------------------------------------------------
        def _publish_views(self, record, question) -> None:
            agent, world, now = self._agent, self.config.frames.world, self._now()
            m = agent.map
            if m.spec.shape[0] and m.spec.shape[1]:
                self._map_pub.publish(occupancy_grid(occupancy_cells(m.occupied, m.free, m.explored), m.spec, world,
                                                     now))
            if agent.value_map is not None and agent.value_map.spec.shape[0]:
                vm = agent.value_map
                self._value_pub.publish(occupancy_grid(value_cells(vm.value, vm.weight), vm.spec, world, now))
            answer = agent.answer()
            text = answer_text(question.choices, record.conformal.set if record.conformal else None,
                               answer.index if record.action.value == "stop" else None)
            self._marker_pub.publish(decision_markers(record, world, now, text))

        def _publish_status(self) -> None:
            from std_msgs.msg import String

            sensors = self._sensor_stats()
            self._status_pub.publish(String(data=status_json(
                state=("paused" if self._control.paused and self._state == "answering" else self._state),
                paused=self._control.paused, question=self._question, step=self._step,
                keyframes_waiting=len(self._feed.keyframes), sensors=sensors, map_kept=self._keep_map,
                error=self._config_error)))

    return EQANode()


def main(args=None) -> int:
    """Console script `eqa_node` (and `ros2 run confident_eqa eqa_node`): run the node until interrupted."""
    import rclpy

    from eqa.ros.spin import spin

    rclpy.init(args=args)
    node = make_node()
    if node.config.autostart:
        node.trigger_configure()
        if node._state == "inactive":
            node.trigger_activate()
    spin(node, num_threads=6, on_exit=node._control.canceled.set)  # a running question ends first
    return 0
