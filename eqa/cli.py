"""The `eqa` command: one entry point, one module per subcommand in `eqa/commands/`."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

# Subcommand modules; each defines `register(subparsers)` adding its parser with `func` set.
COMMAND_MODULES = [
    "eqa.commands.demo",
    "eqa.commands.run",
    "eqa.commands.record",
    "eqa.commands.replay",
    "eqa.commands.calibrate",
    "eqa.commands.sim",
    "eqa.commands.explore",
    "eqa.commands.bench",
    "eqa.commands.report",
    "eqa.commands.serve_vlm",
    "eqa.commands.dataset",
    "eqa.commands.train_vlm",
    "eqa.commands.ros",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eqa", description="Confident EQA: explore until confident.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The command line, with key=value overrides allowed after other positionals and options (`eqa replay BAG
    --out X stop.eps=0.2`): argparse takes a command's positionals in one run, so later ones are left over."""
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "overrides", None), list) and all(
            "=" in a and not a.startswith("-") for a in extra):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def configure_process() -> None:
    """Process-wide settings, made before open3d or torch load their OpenMP runtimes.

    open3d's OpenMP threads spin after each ray cast by default; on a small CPU they then steal the core
    from torch's next model call (a 20 ms builtin-VLM call took up to 1.4 s right after a render).
    Passive waiting removes that. A value already set in the environment wins; spawned workers inherit it."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    configure_process()
    # numba probes TBB and warns when it is too old; the workqueue/omp layers are used instead.
    warnings.filterwarnings("ignore", message="The TBB threading layer")
    parser = build_parser()
    args = parse(parser, argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from vlm.errors import VLMError

    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, VLMError, ImportError) as err:  # bad input, files, a VLM server down, a missing
        # optional package: one line, no traceback
        print(f"eqa {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
