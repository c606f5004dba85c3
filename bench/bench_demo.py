"""The `make demo` question over the first N demo seeds: what a new user sees, not one lucky seed.

Usage:
  python bench/bench_demo.py [--seeds 20] [--eps 0.1] [--workers 2] [--out out/bench_demo]

`eqa demo --seed S` asks the first test-split question of dataset seed S with semantic exploration, conformal
stopping at --eps and the shipped calibration. This runs those questions for S = 0 .. N-1 as one benchmark (the
same episodes `eqa demo` runs: same question, house, start and method) and prints, per seed, the question, the
answer, the truth, whether it is right, the prediction set and the decisions used, then the success count with a
95 % Wilson interval and the mean normalised steps.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    from eqa.metrics import rate
    from eqa.runner import load_summaries
    from sim.questions import generate_questions, save_jsonl
    from vlm.prompts import letter

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("out/bench_demo"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    questions = [generate_questions("test", 1, s)[0] for s in range(args.seeds)]
    dataset = args.out / "demo_questions.jsonl"
    save_jsonl(questions, dataset)
    eqa = Path(sys.executable).parent / "eqa"
    subprocess.run([str(eqa), "bench", "--dataset", str(dataset), "--method", "semantic", "--out",
                    str(args.out / "bench"), "--workers", str(args.workers), "stop.policy=conformal",
                    f"stop.eps={args.eps}"], check=True)
    by_id = {s["question_id"]: s for s in load_summaries(args.out / "bench")}
    print("\n| demo seed | question | answer | truth | right | set | decisions |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for seed, q in enumerate(questions):
        s = by_id[q.id]
        answer = q.choices[s["answer"]] if s["answer"] is not None else "none"
        final = ",".join(letter(i) for i in s.get("final_set", []))
        rows.append({"seed": seed, "question": q.question, "answer": answer, "truth": q.answer_text,
                     "success": bool(s["success"]), "final_set": final, "decisions": s["decisions"],
                     "budget": s["budget"], "normalized_steps": s["normalized_steps"]})
        print(f"| {seed} | {q.question} | {answer} | {q.answer_text} | {'yes' if s['success'] else 'no'} | {final} | "
              f"{s['decisions']}/{s['budget']} |")
    r = rate([row["success"] for row in rows])
    steps = sum(row["normalized_steps"] for row in rows) / len(rows)
    print(f"\nright on {r['successes']}/{r['n']} demo seeds ({r['rate']:.0%}, 95 % [{r['ci95'][0]:.0%}, "
          f"{r['ci95'][1]:.0%}]); mean normalised steps {steps:.2f}")
    (args.out / "demo.json").write_text(json.dumps({"rows": rows, "success": r, "normalized_steps": steps}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
