"""The eqa_node on a live RGB-D stream: the sim robot streams 640x480 colour + depth at 15 Hz (best effort, as a
robot's camera driver does) with odometry and /tf, and serves NavigateToPose; the node answers a question with
the built-in VLM. Printed: input frames, frames the node received, built and dropped (by reason),
keyframe-to-decision latency (the decision's feedback arriving here minus the capture stamp of the newest frame
it used: transport, queueing, mapping, VLM and planning), the same decisions' compute time in the agent (the
in-process peer: the record's map + VLM + prompt + plan seconds) and the ratio, and CPU of both processes.

    python bench/bench_ros.py [--seed 5] [--rate 15] [--no-dds-profile]

--no-dds-profile: Fast DDS's default transports (a 640x480 frame does not fit its default shared-memory
segment); by default both processes use configs/ros/fastdds_large_data.xml.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=5, help="question seed (test split)")
    parser.add_argument("--rate", type=float, default=15.0, help="camera rate, Hz")
    parser.add_argument("--domain", type=int, default=87)
    parser.add_argument("--timeout", type=float, default=400.0)
    parser.add_argument("--no-dds-profile", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="keep the logs and episode here")
    args = parser.parse_args()

    from ros_helpers import PARAMS, Client, Processes, newest_episode

    from eqa.records import read_records
    from eqa.sim_driver import load_sim_run
    from sim.questions import generate_questions

    run = load_sim_run("semantic")
    q = generate_questions("test", 1, args.seed, run.questions)[0]
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_ros_"))
    if not args.no_dds_profile:
        profile = str(PARAMS / "fastdds_large_data.xml")
        os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = profile
    w, h = run.sim.camera.width, run.sim.camera.height
    print(f"house {q.house_seed}, question seed {args.seed}: {q.question}; camera {w}x{h} at {args.rate:g} Hz; "
          f"DDS {'default transports' if args.no_dds_profile else 'large-data profile'}; logs in {out}")
    with Processes(args.domain, out / "logs") as procs:
        robot = procs.start("sim-robot", PARAMS / "sim_robot.yaml", seed=q.house_seed, n_rooms=q.n_rooms or 0,
                            start=[float(v) for v in q.start], rate_hz=args.rate)
        node = procs.start("node", PARAMS / "eqa_node.yaml", episodes_dir=str(out / "episodes"),
                           seed=q.house_seed, floor_area_m2=float(q.floor_area_m2))
        client = Client(args.domain, "bench")
        try:
            from rclpy.qos import QoSProfile, ReliabilityPolicy
            from sensor_msgs.msg import CameraInfo

            infos: list[float] = []
            client.node.create_subscription(CameraInfo, "/camera/color/camera_info", lambda m: infos.append(
                time.time()), QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
            client.watch_status()
            client.wait_status(lambda s: s["state"] == "idle" and s["sensors"]["frames"] > 0, 120)

            def fresh_status() -> tuple[dict, int]:
                """The node's next status (1 Hz) and the frames seen here when it came: one counting window."""
                n = len(client.statuses)
                while len(client.statuses) == n:
                    time.sleep(0.002)
                return client.statuses[-1]["sensors"], len(infos)

            before, n_info0 = fresh_status()
            cpu0 = (cpu_seconds(node.pid), cpu_seconds(robot.pid))
            t0 = time.monotonic()
            arrivals: dict[int, float] = {}
            handle, feedback = client.send_question(q.question, q.choices)
            done = handle.get_result_async()
            while not done.done():
                for fb in feedback[len(arrivals):]:
                    arrivals[fb.step] = time.time()
                if time.monotonic() - t0 > args.timeout:
                    raise TimeoutError(f"no answer in {args.timeout:g} s")
                time.sleep(0.005)
            for fb in feedback[len(arrivals):]:
                arrivals[fb.step] = time.time()
            wall = time.monotonic() - t0
            cpu1 = (cpu_seconds(node.pid), cpu_seconds(robot.pid))
            after, n_info = fresh_status()
            n_info -= n_info0
            result = done.result().result
        finally:
            client.close()
    records = read_records(newest_episode(out / "episodes") / "record.jsonl")
    latency = np.array([arrivals[r.step] - r.stamp for r in records if r.step in arrivals])
    compute = np.array([r.timings.map_s + r.timings.vlm_s + r.timings.prompt_s + r.timings.plan_s
                        for r in records if r.step in arrivals])
    received = {k: after["received"].get(k, 0) - before["received"].get(k, 0) for k in ("rgb", "depth", "camera_info")}
    dropped = {k: v - before["dropped"].get(k, 0) for k, v in after["dropped"].items()
               if v - before["dropped"].get(k, 0)}
    built = after["frames"] - before["frames"]
    print(f"answer {result.answer_letter or '-'} ({result.stop_reason}) after {result.steps} decisions, "
          f"{result.path_length:.1f} m, {wall:.1f} s")
    print(f"input: {n_info} frames published during the episode ({n_info / wall:.1f} Hz; counted by a reliable "
          f"camera_info subscriber here)")
    print(f"node received: {json.dumps(received)}; frames built {built}; dropped {json.dumps(dropped)}; "
          f"lost before the node (colour): {max(0, n_info - received['rgb'])} "
          f"({max(0, n_info - received['rgb']) / max(n_info, 1):.1%})")
    print(f"keyframe-to-decision latency over {len(latency)} decisions: median {np.median(latency) * 1e3:.0f} ms, "
          f"p95 {np.percentile(latency, 95) * 1e3:.0f} ms, max {latency.max() * 1e3:.0f} ms")
    print(f"in-process peer (the agent's compute for the same decisions): median {np.median(compute) * 1e3:.0f} ms, "
          f"p95 {np.percentile(compute, 95) * 1e3:.0f} ms; latency / compute (medians) "
          f"{np.median(latency) / np.median(compute):.2f}")
    print(f"CPU over the episode: eqa_node {(cpu1[0] - cpu0[0]) / wall:.0%} of a core, "
          f"sim_robot {(cpu1[1] - cpu0[1]) / wall:.0%} (rendering + publishing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
