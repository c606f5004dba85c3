"""Simulator speed: render 640x480 RGB + depth + instance ids, and house generation.

Usage: python bench/bench_sim.py [--frames 100] [--houses 20]
Prints median and 90th-percentile ms. No peer is runnable here (the reference
code renders with habitat-sim), so no ratio is printed.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def main() -> None:
    warnings.filterwarnings("ignore", message="The TBB threading layer")
    from mapping.frame import base_pose
    from sim.env import SimEnv
    from sim.house import generate_house

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--houses", type=int, default=20)
    args = parser.parse_args()

    gen_ms = {}
    for n_rooms in (4, 8, 10):
        times = []
        for seed in range(args.houses):
            t0 = time.perf_counter()
            generate_house(1000 + seed, n_rooms=n_rooms)
            times.append((time.perf_counter() - t0) * 1e3)
        gen_ms[n_rooms] = times
        print(f"house generation, {n_rooms:2d} rooms: median {np.median(times):6.1f} ms, "
              f"p90 {np.percentile(times, 90):6.1f} ms over {args.houses} houses")

    env = SimEnv(generate_house(1000, n_rooms=8))
    env.reset()
    rng = np.random.default_rng(0)
    poses = [env.random_start(rng) for _ in range(args.frames)]
    env.renderer.render(env.robot_pose() @ env.T_base_cam)  # compile the shading kernel
    times = []
    for x, y, yaw in poses:
        T = base_pose(x, y, yaw) @ env.T_base_cam
        t0 = time.perf_counter()
        env.renderer.render(T)
        times.append((time.perf_counter() - t0) * 1e3)
    w, h = env.intrinsics.width, env.intrinsics.height
    print(f"render {w}x{h} RGB+depth+ids: median {np.median(times):6.1f} ms, p90 {np.percentile(times, 90):6.1f} ms "
          f"over {args.frames} poses in an 8-room house ({env.renderer.mesh.triangles.shape[0]} triangles)")
    print("targets: render <= 40 ms median, 8-room generation <= 500 ms median")


if __name__ == "__main__":
    main()
