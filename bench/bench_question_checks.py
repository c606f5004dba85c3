"""What the one-reading checks (`QuestionConfig.answer_checks`, sim/answer_checks.py) remove from the questions
the generator made before them, by category, with a contact sheet of removed and kept examples.

Usage:
  python bench/bench_question_checks.py [--split calib] [--seed 0] [--n 500] [--out out/question_checks]

Generates N questions with the checks off (the old generator), then runs each check on every question's
answerable viewpoints: a check removes a question when none of its viewpoints passes. Prints, per category,
the questions, those each check removes and those any check removes, and the share of answerable viewpoints
dropped among the questions kept. Writes checks.json and contact_sheet.png (removed and kept examples, each
rendered at full resolution from an answerable viewpoint: for a removed question, the first; for a kept one,
the first that passes; the caption gives the target's colour shares or the check's reason).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    import numpy as np
    from tqdm import tqdm

    from sim.answer_checks import COLOUR_NAMES, colour_shares
    from sim.config import SimConfig
    from sim.questions import QuestionConfig, generate_questions

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="calib")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--examples", type=int, default=6, help="removed and kept examples per check on the sheet")
    ap.add_argument("--out", type=Path, default=Path("out/question_checks"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sim, cfg = SimConfig(), QuestionConfig()
    t0 = time.perf_counter()
    with tqdm(total=args.n, desc="questions (checks off)", unit="q") as bar:
        old = generate_questions(args.split, args.n, args.seed, dataclasses.replace(cfg, answer_checks=False), sim,
                                 progress=bar.update)
    labeller = labellers_for(sim, cfg)
    rows = []
    for q in tqdm(old, desc="checks", unit="q"):
        lab = labeller(q.house_seed, q.n_rooms)
        poses = np.asarray(q.answerable_viewpoints, dtype=float)
        checks = lab.check_results(q.candidate(), poses)
        passing = np.all(list(checks.values()), axis=0) if checks else np.ones(len(poses), dtype=bool)
        row = {"id": q.id, "category": q.category, "template": q.template, "question": q.question,
               "answer": q.answer_text, "choices": q.choices, "views": len(poses), "views_passing": int(passing.sum()),
               "removed_by": sorted(name for name, ok in checks.items() if not ok.any()),
               "checks": sorted(checks), "first_passing": int(np.argmax(passing)) if passing.any() else None}
        if q.template == "colour":
            ids, _, _, tris = lab.caster.cast_triangles(poses[:1])
            shares = colour_shares(tris, ids, q.target_ids[0], lab.labels)[0]
            row["colour_shares_first_view"] = {COLOUR_NAMES[k]: round(float(v), 3) for k, v in enumerate(shares) if v}
        rows.append(row)
    print(f"{len(old)} questions of the old generator ({args.split} split, dataset seed {args.seed}, "
          f"{len({q.house_seed for q in old})} houses), {time.perf_counter() - t0:.0f} s\n")
    print("| category | questions | removed by colour | by state | by count | removed in all | answerable views "
          "dropped (kept questions) |")
    print("|---|---|---|---|---|---|---|")
    by_cat = defaultdict(list)
    for r in rows:
        by_cat[r["category"]].append(r)
    table = {}
    for cat in sorted(by_cat) + ["all"]:
        rs = rows if cat == "all" else by_cat[cat]
        removed = {c: sum(c in r["removed_by"] for r in rs) for c in ("colour", "state", "count")}
        gone = sum(bool(r["removed_by"]) for r in rs)
        kept = [r for r in rs if not r["removed_by"]]
        views = sum(r["views"] for r in kept)
        dropped = sum(r["views"] - r["views_passing"] for r in kept)
        table[cat] = {"questions": len(rs), **{f"removed_by_{c}": v for c, v in removed.items()}, "removed": gone,
                      "views_dropped": dropped, "views": views}
        print(f"| {cat} | {len(rs)} | {removed['colour']} | {removed['state']} | {removed['count']} | "
              f"{gone} ({gone / len(rs):.1%}) | {dropped}/{views} ({dropped / max(views, 1):.1%}) |")
    (args.out / "checks.json").write_text(json.dumps({"table": table, "questions": rows}, indent=1))
    picks = sorted(zip(old, rows), key=lambda qr: qr[0].house_seed)  # one house at a time
    sheet = contact_sheet([q for q, _ in picks], [r for _, r in picks], labeller, sim, args.examples,
                          args.out / "contact_sheet.png")
    print(f"\nwrote {args.out / 'checks.json'} and {sheet}")
    return 0


def labellers_for(sim, cfg):
    """A function (house seed, room count) -> HouseLabeller, keeping the last house's (questions come house by
    house)."""
    from sim.house import generate_house
    from sim.questions import HouseLabeller

    held = {}

    def get(seed: int, n_rooms):
        if seed not in held:
            held.clear()
            held[seed] = HouseLabeller(generate_house(seed, n_rooms, sim.house, sim.robot), sim, cfg)
        return held[seed]
    return get


def contact_sheet(questions, rows, labeller, sim, per_check: int, path: Path) -> Path:
    """Removed and kept examples per check, each view at 320x240 with its question and why."""
    from PIL import Image, ImageDraw, ImageFont

    import math

    from mapping.frame import Intrinsics, base_pose
    from sim.render import Renderer
    from vlm.visual_prompt import FONT_PATH

    picks = []
    for check in ("colour", "state", "count"):
        removed = [(q, r) for q, r in zip(questions, rows) if check in r["removed_by"]][:per_check]
        kept = [(q, r) for q, r in zip(questions, rows) if check in r["checks"] and not r["removed_by"]][:per_check]
        picks += [("REMOVED", check, q, r) for q, r in removed] + [("kept", check, q, r) for q, r in kept]
    font = ImageFont.truetype(str(FONT_PATH), size=10)
    fit = lambda text: text if len(text) <= 54 else text[:53] + "…"  # noqa: E731 - one tile wide
    tile_w, tile_h, text_h, cols = 320, 240, 44, 4
    rows_n = max(1, -(-len(picks) // cols))
    sheet = Image.new("RGB", (cols * tile_w, rows_n * (tile_h + text_h)), "white")
    draw = ImageDraw.Draw(sheet)
    intrinsics = Intrinsics.from_hfov(tile_w, tile_h, math.radians(sim.camera.hfov_deg))
    renderers: dict = {}
    for k, (verdict, check, q, r) in enumerate(sorted(picks, key=lambda p: (p[1], p[0]))):
        lab = labeller(q.house_seed, q.n_rooms)
        view = r["first_passing"] if verdict == "kept" else 0
        x, y, yaw = q.answerable_viewpoints[view]
        if q.house_seed not in renderers:
            renderers.clear()
            renderers[q.house_seed] = Renderer(lab.scene, intrinsics)
        rgb, _, _ = renderers[q.house_seed].render(base_pose(x, y, yaw) @ lab.caster.T_base_cam)
        img = Image.fromarray(rgb)
        cx, cy = (k % cols) * tile_w, (k // cols) * (tile_h + text_h)
        sheet.paste(img, (cx, cy))
        if check == "colour":
            shares = sorted(r["colour_shares_first_view"].items(), key=lambda kv: -kv[1])[:4]
            why = "first view: " + " ".join(f"{n} {v:.0%}" for n, v in shares)
        else:
            why = f"{r['views_passing']}/{r['views']} views pass"
        draw.text((cx + 4, cy + tile_h + 2), fit(f"{verdict} by {check}: {q.question}"), fill=(0, 0, 0), font=font)
        draw.text((cx + 4, cy + tile_h + 16), fit(f"answer {q.answer_text}; choices {', '.join(q.choices)}"),
                  fill=(0, 0, 0), font=font)
        draw.text((cx + 4, cy + tile_h + 30), str(why), fill=(160, 0, 0) if verdict == "REMOVED" else (0, 110, 0),
                  font=font)
    sheet.save(path)
    return path


if __name__ == "__main__":
    sys.exit(main())
