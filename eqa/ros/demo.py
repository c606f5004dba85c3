"""`eqa ros demo`: the simulated robot and the eqa_node as two processes on a private ROS domain (localhost
only), the `eqa demo` question asked through the AskQuestion action from this process. The processes' logs
go to OUT/logs/, the node's episode (record, pictures) to OUT/episodes/."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from eqa.narrate import choice_text


def ros_environment(domain: int) -> dict:
    """The environment of a process on ROS domain `domain`, discovery limited to this machine."""
    if not 0 <= domain <= 232:
        raise ValueError(f"ROS domain id must be in [0, 232] (0 to 101 on Linux), got {domain}")
    return {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}


def start_node(kind: str, params_file: Path, overrides: dict, domain: int, log: Path) -> subprocess.Popen:
    """`eqa ros node` or `eqa ros sim-robot` as a child process with -p name:=value overrides."""
    args = [sys.executable, "-m", "eqa.cli", "ros", kind, "--params-file", str(params_file)]
    for name, value in overrides.items():
        args += ["-p", f"{name}:={_param_text(value)}"]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        return subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, env=ros_environment(domain))


def _param_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_param_text(v) if not isinstance(v, str) else repr(v) for v in value) + "]"
    return str(value)


def ask(question: str, choices: Sequence[str], domain: int, timeout_s: float,
        on_feedback: Optional[Callable] = None, action: str = "/ask_question"):
    """Send one AskQuestion goal on `domain` and wait for its result: (status, result message)."""
    import rclpy
    from confident_eqa_interfaces.action import AskQuestion
    from rclpy.action import ActionClient

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # this process's own participant: localhost only
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("eqa_ask", context=context)
    try:
        client = ActionClient(node, AskQuestion, action)
        deadline = time.monotonic() + timeout_s
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        while not client.wait_for_server(timeout_sec=0.5):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no AskQuestion action server at {action} on ROS domain {domain}")
        goal = AskQuestion.Goal(question=question, choices=list(choices))
        sent = client.send_goal_async(goal, feedback_callback=(lambda m: on_feedback(m.feedback)) if on_feedback
                                      else None)
        executor.spin_until_future_complete(sent, timeout_sec=max(0.0, deadline - time.monotonic()))
        handle = sent.result()
        if handle is None or not handle.accepted:
            raise ConnectionRefusedError("the eqa_node refused the question: it is not active, or answering another "
                                         "(its ~/status says which)")
        done = handle.get_result_async()
        executor.spin_until_future_complete(done, timeout_sec=max(0.0, deadline - time.monotonic()))
        if not done.done():
            handle.cancel_goal_async()
            raise TimeoutError(f"no answer within {timeout_s:g} s")
        return done.result().status, done.result().result
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def stop(processes: Sequence[subprocess.Popen]) -> None:
    """Interrupt (then kill) child processes."""
    import signal

    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in processes:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_demo(out: Path, seed: int, domain: int, timeout_s: float, record_bag: bool = False) -> int:
    """Start both nodes, ask the demo question, print feedback and the answer; 0 when answered. record_bag: the
    node records the question as a bag in its episode folder."""
    from eqa.commands.demo import print_choices
    from eqa.config import config_dir
    from eqa.sim_driver import load_sim_run
    from sim.questions import generate_questions

    run = load_sim_run("semantic")
    q = generate_questions("test", 1, seed, run.questions)[0]
    params = config_dir() / "ros" / "sim_demo.yaml"
    out = Path(out)
    print(f"ROS domain {domain} (localhost only); house {q.house_seed}, start ({q.start[0]:.1f}, {q.start[1]:.1f}); "
          f"logs in {out}/logs/")
    print(f"question: {q.question}")
    print_choices(q.choices)
    robot = start_node("sim-robot", params, {"seed": q.house_seed, "n_rooms": q.n_rooms or 0,
                                             "start": [float(v) for v in q.start]},
                       domain, out / "logs" / "sim_robot.log")
    node = start_node("node", params, {"episodes_dir": str(out / "episodes"), "seed": q.house_seed,
                                       "floor_area_m2": float(q.floor_area_m2), "record_bags": record_bag},
                      domain, out / "logs" / "eqa_node.log")
    lock = threading.Lock()

    def feedback(fb) -> None:
        with lock:
            probs = " ".join(f"{p:.2f}" for p in fb.probabilities)
            s = "{" + ", ".join(chr(65 + i) for i in fb.prediction_set) + "}" if fb.prediction_set else "-"
            print(f"  step {fb.step + 1}/{fb.budget}: {fb.decision:<4} relevance {fb.relevance:.2f}  p [{probs}]  "
                  f"set {s}", flush=True)

    try:
        _, result = ask(q.question, q.choices, domain, timeout_s, feedback)
    finally:
        stop([node, robot])
    if result.error:
        print(f"the node could not answer: {result.error}", file=sys.stderr)
        return 1
    answer = choice_text(q.choices, result.answer_index) if result.answer_index >= 0 else "none"
    print(f"\nanswer: {answer} (confidence {result.confidence:.2f}; stop: {result.stop_reason} ({result.stop_policy}) "
          f"after {result.steps} steps, {result.path_length:.1f} m)")
    print(f"truth:  {choice_text(q.choices, q.answer_index)} -> "
          f"{'correct' if result.answer_index == q.answer_index else 'wrong'}")
    print(f"episode written under {out}/episodes/" + (" (with its bag, bag/)" if record_bag else ""))
    return 0
