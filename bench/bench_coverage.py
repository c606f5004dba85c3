"""Coverage of the shipped conformal calibrations on test episodes (no calibration runs needed).

Usage:
  python bench/bench_coverage.py --test out/test_semantic [more folders] [--method semantic] [--camera realsense]

--test: `eqa bench --no-early-stop` folders of test-split questions run with the method and camera the
calibrations were made for (vlm/calibrations/<method>[-<camera>]-eps<eps>.json, eps 0.05 / 0.1 / 0.2). Prints,
per eps, the threshold, the whole-episode coverage (the share of episodes whose true answer stays in the
intersection of the prediction sets; the guarantee is >= 1 - eps) with a Wilson and a house-level bootstrap 95 %
interval, the number of episodes and houses, and the success and normalised steps of conformal stopping.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings("ignore", message="The TBB threading layer")

EPS = (0.05, 0.1, 0.2)


def main(argv=None) -> int:
    import numpy as np

    from eqa.metrics import bootstrap_interval, cluster_bootstrap, conformal_coverage, vlm_rows
    from eqa.report import load_runs, shared_vlm
    from eqa.sim_driver import shipped_calibration_path
    from vlm.conformal import Calibration

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--test", type=Path, nargs="+", required=True)
    ap.add_argument("--method", default="semantic")
    ap.add_argument("--camera", default="hm-eqa", help="camera preset of the runs (picks the calibration files)")
    args = ap.parse_args(argv)
    _, summaries, episodes = load_runs(args.test)
    episodes = [(s, rows) for s, rows in episodes if vlm_rows(rows)]
    vlm = shared_vlm(summaries, "--test")
    houses = [s["seed"] for s, _ in episodes]
    boot = cluster_bootstrap(houses, 2000)
    print(f"{len(episodes)} test episodes from {len(set(houses))} houses ({', '.join(map(str, args.test))}); "
          f"VLM {vlm['model_id']}; camera {args.camera}")
    print("| eps | calibration N | q | coverage (whole episode) [Wilson] [house bootstrap] | success | "
          "normalised steps |")
    print("|---|---|---|---|---|---|")
    for eps in EPS:
        path = shipped_calibration_path(args.method, eps, args.camera)
        cal = Calibration.load(path)
        cal.check(vlm["model_id"], vlm["prompt_version"], eps=eps)
        cov = conformal_coverage(episodes, cal)
        covered = np.array(cov.pop("covered"), dtype=float)
        lo, hi = bootstrap_interval(lambda idx: covered[idx].mean(), boot)
        c = cov["coverage"]
        print(f"| {eps:g} | {cal.n} | {cal.threshold:.4f} | {c['rate']:.1%} [{c['ci95'][0]:.1%}, {c['ci95'][1]:.1%}] "
              f"[{lo:.1%}, {hi:.1%}] | {cov['rate']:.1%} | {cov['normalized_steps']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
