"""`eqa report`: compare benchmark folders in one Markdown report with plots."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help="Markdown report comparing benchmark runs",
                            description="Summarise one or more `eqa bench` folders side by side: success with 95 % "
                                        "intervals (overall and per category), normalised steps, path length, VLM "
                                        "cost, success-versus-steps curves; writes report.md and PNG plots.")
    parser.add_argument("runs", nargs="+", type=Path, help="benchmark folders")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: the first run's folder)")
    parser.add_argument("--calib", type=Path, default=None,
                        help="calibration-split `eqa bench --no-early-stop` folder: adds conformal stopping "
                             "(eps swept) to the success-versus-steps curves")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eqa.report import write_report

    path = write_report(args.runs, args.out or args.runs[0], calib=args.calib)
    print(f"wrote {path}")
    return 0
