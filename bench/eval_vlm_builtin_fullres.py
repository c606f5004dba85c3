"""Check the shipped builtin VLM through its public backend on full-resolution (640x480) views: re-renders
the poses of the cached test-split evaluation data (`eqa train-vlm` work dir) at the simulator's camera
resolution and runs `query_view` (resize inside), reporting the same metrics as the native-resolution eval.

    .venv/bin/python bench/eval_vlm_builtin_fullres.py --data out/train_vlm/test_30h_<key>.npz --houses 6
"""
from __future__ import annotations

import argparse
import json
import math


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--houses", type=int, default=6)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import numpy as np
    import torch

    from mapping.frame import Intrinsics, base_pose, camera_mount
    from sim.config import SimConfig
    from sim.house import generate_house
    from sim.render import Renderer
    from vlm import make_vlm
    from vlm.backends.builtin import BuiltinConfig
    from vlm.builtin_model.training import data as D
    from vlm.builtin_model.training.evaluate import auroc
    from vlm.config import VLMConfig

    torch.set_num_threads(args.threads)
    ds = D.load(args.data)
    qs = ds["questions"]
    sim = SimConfig()
    cam = sim.camera
    intr = Intrinsics.from_hfov(cam.width, cam.height, math.radians(cam.hfov_deg))
    T_base_cam = camera_mount(cam.mount_height, math.radians(cam.pitch_down_deg))
    vlm = make_vlm(VLMConfig(sections={"builtin": BuiltinConfig(weights=args.weights)}))
    view_house = np.zeros(len(ds["images"]), dtype=np.int64)
    view_house[ds["pair_view"]] = [qs[i]["house_seed"] for i in ds["pair_question"]]
    houses = sorted(set(view_house.tolist()))[: args.houses]
    correct, chance, rel, vis, dir_ok = [], [], [], [], []
    for hs in houses:
        renderer = Renderer(generate_house(hs, None, sim.house, sim.robot), intr)
        sx, sy = cam.width / ds["images"].shape[2], cam.height / ds["images"].shape[1]
        for v in np.nonzero(view_house == hs)[0]:
            x, y, yaw = (float(a) for a in ds["poses"][v])
            rgb, _, _ = renderer.render(base_pose(x, y, yaw) @ T_base_cam)
            pts = None
            if ds["has_points"][v]:
                p = ds["points"][v].astype(np.float64)
                pts = np.stack([(p[:, 0] + 0.5) * sx - 0.5, (p[:, 1] + 0.5) * sy - 0.5], axis=1)
            for i in np.nonzero(ds["pair_view"] == v)[0]:
                q = qs[ds["pair_question"][i]]
                r = vlm.query_view(rgb, q["question"], q["choices"], pts if ds["dir_label"][i] >= 0 else None,
                                   kinds=("answer", "relevance", "direction"))
                rel.append(r.relevance)
                vis.append(bool(ds["relevant"][i]))
                if vis[-1]:
                    correct.append(int(np.argmax(r.answer)) == q["answer_index"])
                    chance.append(1 / len(q["choices"]))
                if r.direction is not None:
                    dir_ok.append(int(np.argmax(r.direction)) == int(ds["dir_label"][i]))
    out = {"houses": len(houses), "pairs": len(rel), "visible_pairs": len(correct),
           "answer_acc_visible": float(np.mean(correct)), "chance_visible": float(np.mean(chance)),
           "relevance_auroc": auroc(np.array(rel), np.array(vis)), "direction_agreement": float(np.mean(dir_ok)),
           "direction_pairs": len(dir_ok)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
