"""Builtin VLM inference latency: all four queries for one 640x480 simulator view, batched (one call,
one image encoding, resize inside), on the CPU.

    .venv/bin/python bench/bench_vlm_builtin.py --repeats 50 --threads 2
    .venv/bin/python bench/bench_vlm_builtin.py --question "How many chairs are at the dining table in the kitchen?" \
        --choices Two Three Four Five     # number choices: the count head runs too
"""
from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="checkpoint (default: the shipped one)")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--house", type=int, default=2_000_000, help="house seed of the view (test split)")
    ap.add_argument("--question", default="What colour is the sofa in the living room?")
    ap.add_argument("--choices", nargs="+", default=["Red", "Blue", "Green", "Grey"])
    args = ap.parse_args()

    import numpy as np
    import torch

    from sim.env import SimEnv, SimEpisode
    from vlm import make_vlm
    from vlm.backends.builtin import BuiltinConfig
    from vlm.config import VLMConfig

    torch.set_num_threads(args.threads)
    env = SimEnv.from_seed(args.house)
    frame = env.reset(SimEpisode(seed=0))
    assert frame.rgb.shape == (480, 640, 3)
    vlm = make_vlm(VLMConfig(sections={"builtin": BuiltinConfig(weights=args.weights)}))
    question, choices = args.question, args.choices
    points = [[100.0, 300.0], [320.0, 260.0], [540.0, 330.0]]
    rng = np.random.default_rng(0)
    times = []
    for i in range(args.warmup + args.repeats):
        img = frame.rgb.copy()
        img[0, 0] = rng.integers(0, 255, 3)  # a new image hash each call (no cache anyway)
        t0 = time.perf_counter()
        vlm.query_view(img, question, choices, points)
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(dt * 1000)
    times.sort()
    out = {"model_id": vlm.info.model_id, "threads": args.threads, "repeats": args.repeats,
           "image": "640x480", "queries": 4, "question": question, "median_ms": statistics.median(times),
           "p90_ms": times[int(0.9 * (len(times) - 1))], "min_ms": times[0]}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
