"""Bag replay speed on the 100-frame trajectory of bench_mapping (640x480, the default house): the frames are
written to an MCAP bag (BagRecorder.write_frames: colour, 32FC1 depth, camera info, /odom, /tf), then replayed:

- read: the bag read, colour and depth paired and posed (eqa.bag.frames), frames per second;
- mapping only: those frames integrated into the agent's map (EQAAgent.integrate), against mapping the same
  frames held in memory (the peer: what a replay adds to mapping);
- semantic + built-in VLM: the open-loop replay (`eqa replay`: keyframes every 1 m / 0.5 rad scored by the VLM,
  the rest mapped), run to the end of the bag (fixed budget, no stop when explored).

    .venv/bin/python bench/bench_replay.py [--frames 100] [--seed 0] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `eqa` sets it (README: open3d's spinning threads)
warnings.filterwarnings("ignore", message="The TBB threading layer")

from bench.bench_mapping import trajectory_frames  # noqa: E402
from eqa.agent import EQAAgent, EQAQuestion  # noqa: E402
from eqa.bag.recorder import BagRecorder  # noqa: E402
from eqa.bag.replay import ReplayEnv, open_frames  # noqa: E402
from eqa.bag.topics import BagTopics  # noqa: E402
from eqa.episode import Episode, run_episode  # noqa: E402
from eqa.ros.keyframes import KeyframeQueue  # noqa: E402
from eqa.sim_driver import load_sim_run, make_agent  # noqa: E402
from sim.env import SimEnv  # noqa: E402


def best_of(repeats: int, fn) -> float:
    """The fastest of `repeats` runs of fn(), seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3, help="keep the fastest of this many runs")
    args = ap.parse_args(argv)
    env = SimEnv.from_seed(args.seed)
    frames = trajectory_frames(env, args.frames, args.seed)
    fbe = load_sim_run("fbe").method
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "bag"
        recorder = BagRecorder(bag)
        recorder.write_frames(frames)
        recorder.close()
        size_mb = sum(p.stat().st_size for p in bag.iterdir()) / 2 ** 20

        def read():
            reader, _, it = open_frames(bag, BagTopics())
            out = list(it)
            reader.close()
            return out

        replayed = read()
        assert len(replayed) == len(frames), (len(replayed), len(frames))
        read_s = best_of(args.repeats, read)

        def map_in_memory():
            agent = EQAAgent(fbe)
            agent.reset(None)
            agent.integrate(frames)

        def map_from_bag():
            agent = EQAAgent(fbe)
            agent.reset(None)
            reader, _, it = open_frames(bag, BagTopics())
            for frame in it:
                agent.integrate([frame])
            reader.close()

        memory_s = best_of(args.repeats, map_in_memory)
        bag_map_s = best_of(args.repeats, map_from_bag)

        run = load_sim_run("semantic", ["stop.policy=fixed-budget", "stop.stop_when_explored=false",
                                        "agent.default_budget=1000"])
        agent = make_agent(run, __import__("vlm").make_vlm(run.method.vlm))
        stats = {}

        def semantic():
            reader, _, it = open_frames(bag, BagTopics())
            replay_env = ReplayEnv(iter(it), KeyframeQueue(1.0, 0.5, capacity=1), agent.integrate)
            episode = Episode("bench", None, EQAQuestion("What colour is the sofa?", ("red", "blue", "green")), 0)
            summary = run_episode(replay_env, agent, episode, Path(tmp) / "episode", rerun=False, progress=False)
            reader.close()
            stats.update(frames=replay_env.n_frames, keyframes=replay_env.n_keyframes, vlm_calls=summary["vlm_calls"],
                         decisions=summary["decisions"], vlm_s=summary["vlm_seconds"])

        semantic_s = best_of(args.repeats, semantic)
    n = len(frames)
    print(f"bag replay bench: {n} frames of 640x480 (house seed {args.seed}), MCAP bag {size_mb:.1f} MB, "
          f"best of {args.repeats}")
    print(f"  read + pair + pose:         {n / read_s:7.1f} frames/s ({read_s * 1e3 / n:.1f} ms/frame)")
    print(f"  mapping only, from the bag: {n / bag_map_s:7.1f} frames/s ({bag_map_s * 1e3 / n:.1f} ms/frame)")
    print(f"  mapping only, in memory:    {n / memory_s:7.1f} frames/s (peer); the bag costs "
          f"x{bag_map_s / memory_s:.2f} the time of mapping alone")
    print(f"  semantic + built-in VLM at keyframes: {stats['frames'] / semantic_s:7.1f} frames/s "
          f"({stats['keyframes']} keyframes, {stats['decisions']} decisions, {stats['vlm_calls']} VLM calls, "
          f"{stats['vlm_s']:.1f} s in the VLM)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
