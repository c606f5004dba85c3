"""Real ROS 2 processes for the node tests: the sim robot and the eqa_node as child processes on a private
domain (discovery limited to localhost), and a client node in the test process that asks questions, reads the
node's status, calls its services and plays the parts a test needs (a Nav2 server, a bad camera)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from eqa.config import config_dir
from eqa.ros.demo import ros_environment, start_node, stop

PARAMS = config_dir() / "ros"


class Processes:
    """Child processes (`eqa ros node` / `eqa ros sim-robot`) on one domain, logs under a folder; stopped on
    exit, their logs kept for failure messages."""

    def __init__(self, domain: int, logs: Path) -> None:
        self.domain, self.logs, self.procs = domain, logs, {}

    def start(self, kind: str, params_file: Path, **overrides) -> subprocess.Popen:
        proc = start_node(kind, params_file, overrides, self.domain, self.logs / f"{kind}.log")
        self.procs[kind] = proc
        return proc

    def log(self, kind: str) -> str:
        path = self.logs / f"{kind}.log"
        return path.read_text()[-4000:] if path.exists() else ""

    def alive(self, kind: str) -> bool:
        return self.procs[kind].poll() is None

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc) -> None:
        stop(list(self.procs.values()))


class Client:
    """A node in the test process on `domain`, spun by its own executor thread."""

    def __init__(self, domain: int, name: str = "") -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor

        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name or f"test_client_{domain}", context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        self.statuses: list[dict] = []
        self._status_sub = None

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)

    # -- the eqa_node's status ------------------------------------------------------------------------------
    def watch_status(self, topic: str = "/eqa_node/status") -> None:
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String

        qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
        self._status_sub = self.node.create_subscription(String, topic, lambda m: self.statuses.append(
            json.loads(m.data)), qos)

    def wait_status(self, accept: Callable[[dict], bool], timeout_s: float) -> dict:
        """The first status (from now on, or the newest) that `accept` takes; AssertionError after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.statuses and accept(self.statuses[-1]):
                return self.statuses[-1]
            time.sleep(0.1)
        raise AssertionError(f"no such status in {timeout_s:g} s; last: {self.statuses[-1] if self.statuses else None}")

    # -- the action and services ----------------------------------------------------------------------------
    def send_question(self, question: str, choices, action: str = "/ask_question", timeout_s: float = 60.0):
        """Send an AskQuestion goal; returns (goal handle, feedback list). Waits for the server and acceptance."""
        from confident_eqa_interfaces.action import AskQuestion
        from rclpy.action import ActionClient

        self._ask = getattr(self, "_ask", None) or ActionClient(self.node, AskQuestion, action)
        assert self._ask.wait_for_server(timeout_sec=timeout_s), f"no {action} action server"
        feedback: list = []
        future = self._ask.send_goal_async(AskQuestion.Goal(question=question, choices=list(choices)),
                                           feedback_callback=lambda m: feedback.append(m.feedback))
        handle = wait_future(future, timeout_s)
        return handle, feedback

    def result(self, handle, timeout_s: float):
        """(status, result) of an accepted goal."""
        response = wait_future(handle.get_result_async(), timeout_s)
        return response.status, response.result

    def call(self, srv_type, name: str, request, timeout_s: float = 10.0):
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout_s), f"no service {name}"
        return wait_future(client.call_async(request), timeout_s)


def wait_future(future, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while not future.done():
        if time.monotonic() > deadline:
            raise AssertionError(f"no reply within {timeout_s:g} s")
        time.sleep(0.02)
    return future.result()


def run_eqa(args: list[str], domain: int, cwd: Path, timeout_s: float = 600) -> subprocess.CompletedProcess:
    """`eqa ARGS` as a child process on domain (localhost only)."""
    return subprocess.run([sys.executable, "-m", "eqa.cli", *args], cwd=cwd, env=ros_environment(domain),
                          capture_output=True, text=True, timeout=timeout_s)


def newest_episode(folder: Path) -> Optional[Path]:
    runs = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    return runs[-1] if runs else None
