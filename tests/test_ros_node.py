"""The eqa_node and the sim robot as real processes over real DDS (Fast DDS from the ros-jazzy wheels), each test
on its own ROS_DOMAIN_ID with discovery limited to localhost; the test process is the user (the AskQuestion
action, the services, the status) and, where a test needs one, a Nav2 server or a bad camera."""
from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("confident_eqa_interfaces.action")
pytest.importorskip("nav2_msgs.action")

from ros_helpers import PARAMS, Client, Processes, newest_episode, run_eqa  # noqa: E402

from eqa.records import read_records  # noqa: E402

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SMALL_CAMERA = ["sim.camera.width=160", "sim.camera.height=120"]
FAST_ROBOT = ["sim.robot.linear_speed=1.5", "sim.robot.angular_speed=3.0"]
QUESTION = ("What colour is the sofa?", ("Red", "Blue", "Green"))
SUCCEEDED, CANCELED, ABORTED = 4, 5, 6  # action_msgs/GoalStatus


def _close(a, b, path="") -> list[str]:
    """Where two JSON values differ beyond float rounding (ROS stamps are whole nanoseconds)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in _close(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _close(x, y, f"{path}[{i}]")]
    if isinstance(a, float) or isinstance(b, float):
        return [] if isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(
            a, b, rel_tol=1e-6, abs_tol=1e-6) else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _decision(record) -> dict:
    """A record's decision content: what the agent saw, scored, planned and did (no timings, no ground truth,
    which only the in-process simulator knows)."""
    out = {k: v for k, v in record.to_json().items() if k not in ("timings", "truth")}
    out["views"] = [{k: v for k, v in view.items() if k != "vlm_s"} for view in out["views"]]
    return out


def test_demo_answers_through_the_action_with_the_decisions_of_eqa_run(tmp_path):
    """`eqa ros demo`: the sim robot publishing exactly the in-process simulator's frames and the node answer
    through the action; every decision equals the in-process episode's for the same question. The node records
    the question as a bag, and `eqa replay --check` re-runs every decision of it identically."""
    from eqa.sim_driver import load_sim_run, run_question
    from sim.questions import generate_questions
    from vlm import make_vlm

    out = run_eqa(["ros", "demo", "--out", str(tmp_path / "ros"), "--seed", "3", "--domain", "41",
                   "--timeout", "400", "--record-bag"], 41, ROOT)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "answer:" in out.stdout and "step 1/" in out.stdout  # feedback, then the result
    episode = newest_episode(tmp_path / "ros" / "episodes")
    assert (episode / "episode.png").is_file() and (episode / "map.png").is_file()

    run = load_sim_run("semantic", ["stop.policy=conformal", "stop.eps=0.1"])
    q = generate_questions("test", 1, 3, run.questions)[0]
    expected = run_question(q, run, tmp_path / "inproc", vlm=make_vlm(run.method.vlm))
    made = read_records(episode / "record.jsonl")
    wanted = read_records(tmp_path / "inproc" / "record.jsonl")
    assert len(made) == len(wanted) == expected["decisions"] + 1 >= 3  # the decisions and the stop
    for a, b in zip(made, wanted):
        assert not (diff := _close(_decision(a), _decision(b), f"step {b.step}")), diff[:5]
    summary = json.loads((episode / "summary.json").read_text())
    for key in ("answer", "stop_reason", "final_set", "answer_probabilities", "path_length_m"):
        assert not _close(summary[key], expected[key], key), (key, summary[key], expected[key])
    check = run_eqa(["replay", str(episode / "bag"), "--check"], 41, ROOT)
    assert check.returncode == 0 and f"all {len(made)} decisions identical" in check.stdout, check.stdout + check.stderr


def test_exact_mode_questions_asked_later_start_from_the_frame_the_robot_stands_on(tmp_path):
    """The sim robot in exact mode sends a new frame only when it moves: a question asked later, and a second
    one (on the map the first left), start from the frame it stands on."""
    with Processes(47, tmp_path / "logs") as procs:
        procs.start("sim-robot", PARAMS / "sim_demo.yaml", seed=7, overrides=SMALL_CAMERA)
        procs.start("node", PARAMS / "sim_demo.yaml", episodes_dir=str(tmp_path / "episodes"),
                    stop_policy="fixed-budget", method_overrides=["agent.default_budget=2"])
        client = Client(47)
        try:
            client.watch_status()
            client.wait_status(lambda s: s["state"] == "idle" and s["sensors"]["frames"] >= 1, 60)
            time.sleep(3.0)  # the robot's idle repeats of the same frame are not new frames
            for n in (1, 2):
                handle, _ = client.send_question(*QUESTION)
                status, result = client.result(handle, 120)
                assert status == SUCCEEDED and result.error == "", (n, result.error, procs.log("node"))
                assert result.stop_reason == "budget" and result.steps == 2
            first, second = sorted((tmp_path / "episodes").iterdir())
            a, b = read_records(first / "record.jsonl"), read_records(second / "record.jsonl")
            assert b[0].frames[0].stamp == a[-1].stamp  # the second question starts where the first ended
            assert len(b[0].frames) == 5  # that frame and the look-around turns: the map grew on
        finally:
            client.close()


# -- a robot streaming at 10 Hz -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def streaming(tmp_path_factory):
    """The sim robot streaming its camera at 10 Hz in real time (poses from /tf) and the node with a short
    fixed budget; a client on the same domain."""
    folder = tmp_path_factory.mktemp("streaming")
    with Processes(42, folder / "logs") as procs:
        procs.start("sim-robot", PARAMS / "sim_robot.yaml", seed=7, rate_hz=10.0,
                    overrides=SMALL_CAMERA + FAST_ROBOT)
        procs.start("node", PARAMS / "eqa_node.yaml", episodes_dir=str(folder / "episodes"),
                    stop_policy="fixed-budget", method_overrides=["agent.default_budget=3"])
        client = Client(42)
        client.watch_status()
        try:
            yield procs, client, folder
        finally:
            client.close()


def test_streaming_at_10_hz_the_episode_completes_and_answers(streaming):
    from nav_msgs.msg import OccupancyGrid
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from visualization_msgs.msg import Marker, MarkerArray

    procs, client, folder = streaming
    markers: list = []
    client.node.create_subscription(MarkerArray, "/eqa_node/markers", markers.append, 10)
    client.wait_status(lambda s: s["state"] == "idle" and s["sensors"]["frames"] > 5, 60)
    handle, feedback = client.send_question(*QUESTION)
    assert handle.accepted
    status, result = client.result(handle, 240)
    assert status == SUCCEEDED and result.error == "", (result.error, procs.log("node"))
    assert result.stop_reason == "budget" and result.steps == 3 and result.path_length > 0
    assert 0 <= result.answer_index < 3 and result.answer == QUESTION[1][result.answer_index]
    assert len(result.probabilities) == 3 and result.confidence == pytest.approx(
        result.probabilities[result.answer_index])
    assert [f.step for f in feedback] == [0, 1, 2, 3] and feedback[-1].decision == "stop"
    assert all(len(f.probabilities) == 3 for f in feedback)
    records = read_records(newest_episode(folder / "episodes") / "record.jsonl")
    assert len(records) == 4 and len(records[0].frames) >= 5  # the start frame and the look-around turns
    moved = [r for r in records if r.outcome is not None and r.outcome.moved > 0.1]
    assert moved and all(len(r.frames) >= 1 for r in records[1:])
    status = client.wait_status(lambda s: s["state"] == "idle" and s["map_kept"], 10)
    assert status["sensors"]["frames"] > 50
    # for RViz: one marker array per decision (frontiers, the goal; the answer as text at the stop) and the
    # latched maps, which a subscriber that comes later still gets
    assert len(markers) == 4 and all(any(m.ns == "goal" for m in a.markers) for a in markers[:3])
    assert any(m.ns == "frontiers" for a in markers for m in a.markers)
    text = [m.text for m in markers[-1].markers if m.type == Marker.TEXT_VIEW_FACING]
    assert text and result.answer in text[0]
    grids: dict = {}
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    for name in ("map", "value_map"):
        client.node.create_subscription(OccupancyGrid, f"/eqa_node/{name}", lambda m, n=name: grids.setdefault(n, m),
                                        latched)
    deadline = time.monotonic() + 10
    while len(grids) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    for grid in grids.values():
        assert grid.header.frame_id == "map" and len(grid.data) == grid.info.width * grid.info.height > 100
    assert set(grids) == {"map", "value_map"} and any(v == 0 for v in grids["map"].data)  # free cells seen


def test_pause_stops_the_robot_and_cancel_ends_the_question(streaming):
    from nav_msgs.msg import Odometry
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_srvs.srv import SetBool

    _, client, _ = streaming
    odom: list = []
    client.node.create_subscription(Odometry, "/odom", odom.append,
                                    QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT))
    handle, feedback = client.send_question(*QUESTION)
    deadline = time.monotonic() + 60
    while not odom or abs(odom[-1].twist.twist.linear.x) + abs(odom[-1].twist.twist.angular.z) < 1e-6:
        assert time.monotonic() < deadline, "the robot never moved"
        time.sleep(0.05)
    assert client.call(SetBool, "/eqa_node/pause", SetBool.Request(data=True)).success
    client.wait_status(lambda s: s["state"] == "paused" and s["paused"], 5)
    time.sleep(1.0)  # the goal is canceled: the robot stands
    n, steps = len(odom), len(feedback)
    time.sleep(1.5)
    still = odom[n:]
    assert len(still) >= 10 and all(abs(m.twist.twist.linear.x) + abs(m.twist.twist.angular.z) < 1e-9 for m in still)
    assert len({(round(m.pose.pose.position.x, 6), round(m.pose.pose.position.y, 6)) for m in still}) == 1
    assert len(feedback) == steps  # no decision while paused
    assert client.call(SetBool, "/eqa_node/pause", SetBool.Request(data=False)).success
    client.wait_status(lambda s: s["state"] == "answering" and not s["paused"], 5)
    deadline = time.monotonic() + 60
    while abs(odom[-1].twist.twist.linear.x) + abs(odom[-1].twist.twist.angular.z) < 1e-6:
        assert time.monotonic() < deadline, "the robot did not drive on after resuming"
        time.sleep(0.05)
    wait = handle.cancel_goal_async()
    while not wait.done():
        time.sleep(0.02)
    status, result = client.result(handle, 30)
    assert status == CANCELED and result.stop_reason == "canceled" and result.error == ""
    time.sleep(0.5)
    n = len(odom)
    time.sleep(1.0)
    assert all(abs(m.twist.twist.linear.x) + abs(m.twist.twist.angular.z) < 1e-9 for m in odom[n:])
    client.wait_status(lambda s: s["state"] == "idle", 10)


def test_reset_map_clears_the_kept_map(streaming):
    from std_srvs.srv import Trigger

    _, client, _ = streaming
    client.wait_status(lambda s: s["map_kept"], 10)
    reply = client.call(Trigger, "/eqa_node/reset_map", Trigger.Request())
    assert reply.success
    client.wait_status(lambda s: not s["map_kept"], 5)


# -- Nav2 that fails or never finishes ------------------------------------------------------------------------
class FakeNav2:
    """A NavigateToPose server in the test process: aborts every goal ('abort') or keeps it running until
    canceled ('hang'); counts goals and cancel requests."""

    def __init__(self, client: Client, name: str = "navigate_to_pose") -> None:
        from nav2_msgs.action import NavigateToPose
        from rclpy.action import ActionServer, GoalResponse
        from rclpy.callback_groups import ReentrantCallbackGroup

        self.mode, self.goals, self.canceled = "abort", 0, 0
        self._type = NavigateToPose
        self._server = ActionServer(client.node, NavigateToPose, name, execute_callback=self._execute,
                                    goal_callback=lambda g: GoalResponse.ACCEPT,
                                    cancel_callback=self._cancel, callback_group=ReentrantCallbackGroup())

    def _cancel(self, handle):
        from rclpy.action import CancelResponse

        self.canceled += 1
        return CancelResponse.ACCEPT

    def _execute(self, handle):
        self.goals += 1
        result = self._type.Result()
        if self.mode == "abort":
            result.error_code, result.error_msg = 204, "no valid path"
            handle.abort()
            return result
        while not handle.is_cancel_requested:
            time.sleep(0.02)
        handle.canceled()
        return result


def test_nav2_goals_that_fail_or_time_out_are_reported_not_reached(tmp_path):
    with Processes(43, tmp_path / "logs") as procs:
        procs.start("sim-robot", PARAMS / "sim_robot.yaml", seed=7, rate_hz=10.0,
                    overrides=SMALL_CAMERA, **{"topics.navigate_action": "sim_navigate"})  # not the node's server
        procs.start("node", PARAMS / "eqa_node.yaml", episodes_dir=str(tmp_path / "episodes"),
                    stop_policy="fixed-budget", method_overrides=["agent.default_budget=2"],
                    **{"navigation.timeout_s": 1.0})
        client = Client(43)
        try:
            nav = FakeNav2(client)
            client.watch_status()
            client.wait_status(lambda s: s["state"] == "idle" and s["sensors"]["frames"] > 5, 60)
            handle, _ = client.send_question(*QUESTION)
            status, result = client.result(handle, 120)
            assert status == SUCCEEDED and result.error == "" and result.stop_reason == "budget"
            records = read_records(newest_episode(tmp_path / "episodes") / "record.jsonl")
            moves = [r for r in records if r.action.value == "move"]
            assert nav.goals >= 5 and moves  # 4 look-around turns, then the moves
            assert all(r.outcome.blocked and not r.outcome.reached and r.outcome.moved < 0.05 for r in moves)

            nav.mode, goals = "hang", nav.goals
            t0 = time.monotonic()
            handle, _ = client.send_question(*QUESTION)
            status, result = client.result(handle, 120)
            assert status == SUCCEEDED and result.error == "" and result.stop_reason == "budget"
            runs = sorted(p for p in (tmp_path / "episodes").iterdir())
            records = read_records(runs[-1] / "record.jsonl")
            moves = [r for r in records if r.action.value == "move"]
            assert moves and all(not r.outcome.reached and not r.outcome.blocked for r in moves)
            assert nav.canceled == nav.goals - goals >= 1  # each goal canceled at its timeout
            assert time.monotonic() - t0 >= 1.0 * (nav.goals - goals)
        finally:
            client.close()


def test_goal_pose_navigation_reads_arrival_from_the_pose(tmp_path):
    """Without Nav2's action: goals as PoseStamped on /goal_pose, arrival (or stopping short) read from the
    robot's pose; the episode completes with moves that got somewhere."""
    with Processes(46, tmp_path / "logs") as procs:
        procs.start("sim-robot", PARAMS / "sim_robot.yaml", seed=7, rate_hz=10.0, overrides=SMALL_CAMERA + FAST_ROBOT,
                    **{"topics.navigate_action": "sim_navigate"})
        procs.start("node", PARAMS / "eqa_node.yaml", episodes_dir=str(tmp_path / "episodes"),
                    stop_policy="fixed-budget", method_overrides=["agent.default_budget=2"],
                    **{"navigation.mode": "goal_pose", "navigation.stall_s": 1.0})
        client = Client(46)
        try:
            client.watch_status()
            client.wait_status(lambda s: s["state"] == "idle" and s["sensors"]["frames"] > 5, 60)
            handle, feedback = client.send_question(*QUESTION)
            status, result = client.result(handle, 180)
            assert status == SUCCEEDED and result.error == "", (result.error, procs.log("node"))
            assert result.stop_reason == "budget" and result.path_length > 0.5
            records = read_records(newest_episode(tmp_path / "episodes") / "record.jsonl")
            moves = [r for r in records if r.action.value == "move"]
            assert moves and all(r.outcome.moved > 0.1 and not r.outcome.blocked for r in moves)
            assert any(r.outcome.reached for r in moves)
            for r in moves:  # a goal reached: the next decision stands at it (arrival_distance 0.3 m)
                after = records[r.step + 1]
                if r.outcome.reached:
                    assert np.hypot(*np.subtract(after.pose[:2], r.plan.waypoint[:2])) <= 0.3
        finally:
            client.close()


# -- bad input --------------------------------------------------------------------------------------------------
class Camera:
    """Publishes camera frames and odometry as a robot driver would, with whatever is wrong with them."""

    def __init__(self, client: Client) -> None:
        from nav_msgs.msg import Odometry
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        node = client.node
        self.rgb = node.create_publisher(Image, "/camera/color/image_raw", qos)
        self.depth = node.create_publisher(Image, "/camera/aligned_depth_to_color/image_raw", qos)
        self.info = node.create_publisher(CameraInfo, "/camera/color/camera_info", qos)
        self.odom = node.create_publisher(Odometry, "/odom", qos)
        self.clock = node.get_clock()

    def now(self) -> float:
        return self.clock.now().nanoseconds * 1e-9

    def publish(self, stamp: float, info: bool = True, depth_size=(120, 160), odom_stamp=None,
                odom_nan: bool = False) -> None:
        from nav_msgs.msg import Odometry

        from eqa.ros.convert import camera_info, depth_image, fill_pose, rgb_image, seconds_stamp
        from mapping.frame import Intrinsics, base_pose

        h, w = 120, 160
        rgb = np.full((h, w, 3), 120, np.uint8)
        depth = np.full(depth_size, 2.0, np.float32)
        odom = Odometry()
        odom.header.frame_id, odom.child_frame_id = "map", "base_link"
        odom.header.stamp = seconds_stamp(stamp if odom_stamp is None else odom_stamp)
        fill_pose(odom.pose.pose, base_pose(1.0, 2.0, 0.3))
        if odom_nan:
            odom.pose.pose.position.x = float("nan")
        self.odom.publish(odom)
        if info:
            self.info.publish(camera_info(Intrinsics(120.0, 120.0, 80.0, 60.0, w, h), stamp, "camera"))
        self.depth.publish(depth_image(depth, stamp, "camera"))
        self.rgb.publish(rgb_image(rgb, stamp, "camera"))


def _node_params(tmp_path: Path, **more) -> dict:
    return {"episodes_dir": str(tmp_path / "episodes"), "frames.pose_source": "odom", "sync.reliable_sensors": True,
            "sync.frame_timeout_s": 2.0, "stop_policy": "fixed-budget",
            "method_overrides": ["agent.default_budget=2", "agent.look_around_turns=0"], **more}


def _stream(camera: Camera, seconds: float, **kwargs) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        camera.publish(camera.now(), **kwargs)
        time.sleep(0.1)


def test_the_node_survives_and_reports_bad_input(tmp_path):
    with Processes(44, tmp_path / "logs") as procs:
        procs.start("node", PARAMS / "eqa_node.yaml", **_node_params(tmp_path))
        client = Client(44)
        try:
            client.watch_status()
            camera = Camera(client)
            client.wait_status(lambda s: s["state"] == "idle", 60)
            time.sleep(1.0)  # discovery

            _stream(camera, 1.5, info=False)  # no CameraInfo: nothing pairs, nothing is built
            s = client.wait_status(lambda s: s["sensors"]["received"].get("rgb", 0) >= 10, 5)
            assert s["sensors"]["frames"] == 0 and s["sensors"]["dropped"].get("unpaired", 0) > 0
            handle, _ = client.send_question(*QUESTION)
            status, result = client.result(handle, 30)
            assert status == ABORTED and result.stop_reason == "error" and "camera frame" in result.error

            _stream(camera, 1.0, depth_size=(60, 80))  # depth of another size
            s = client.wait_status(lambda s: s["sensors"]["dropped"].get("size mismatch", 0) >= 5, 5)
            assert s["sensors"]["frames"] == 0 and "80x60" in s["sensors"]["last_problem"]

            _stream(camera, 1.0, odom_nan=True)  # NaN poses
            s = client.wait_status(lambda s: s["sensors"]["dropped"].get("bad odometry", 0) >= 5, 5)
            assert s["sensors"]["frames"] == 0

            old = camera.now() - 30.0  # odometry stopped 30 s ago: frames wait for a pose, then are dropped
            _stream(camera, 3.5, odom_stamp=old)
            s = client.wait_status(lambda s: s["sensors"]["dropped"].get("stale pose", 0) >= 5, 5)
            assert s["sensors"]["frames"] == 0 and "s older" in s["sensors"]["last_problem"], s

            _stream(camera, 1.0)  # good input again: frames are built, the node works on
            s = client.wait_status(lambda s: s["sensors"]["frames"] >= 5, 5)
            assert procs.alive("node") and s["state"] == "idle"

            handle, _ = client.send_question("What is on the sofa?", ())  # open: the built-in VLM cannot write text
            status, result = client.result(handle, 30)
            assert status == ABORTED and result.stop_reason == "error" and "cannot write text" in result.error
            assert procs.alive("node") and client.wait_status(lambda s: s["state"] == "idle", 5)
        finally:
            client.close()


def test_a_dead_vlm_server_fails_the_question_not_the_node(tmp_path):
    params = _node_params(tmp_path, vlm_backend="openai", vlm_base_url="http://127.0.0.1:9/v1", vlm_model="m",
                          stop_policy="relevance")
    params["method_overrides"] = params["method_overrides"] + ["vlm.openai.max_retries=0"]
    with Processes(45, tmp_path / "logs") as procs:
        procs.start("node", PARAMS / "eqa_node.yaml", **params)
        client = Client(45)
        try:
            client.watch_status()
            camera = Camera(client)
            client.wait_status(lambda s: s["state"] == "idle", 60)
            stop = threading.Event()

            def feed() -> None:
                while not stop.is_set():
                    camera.publish(camera.now())
                    time.sleep(0.1)

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
            try:
                handle, _ = client.send_question(*QUESTION)
                status, result = client.result(handle, 60)
            finally:
                stop.set()
                feeder.join()
            assert status == ABORTED and result.stop_reason == "error"
            assert "127.0.0.1:9" in result.error or "VLM" in result.error, result.error
            s = client.wait_status(lambda s: s["state"] == "idle", 5)
            assert procs.alive("node") and s["error"] == ""
        finally:
            client.close()
