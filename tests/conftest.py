"""Test-session process settings: the same as the `eqa` command's (passive OpenMP waiting, set before
open3d and torch load), so in-process episodes run like they do from the CLI."""
from eqa.cli import configure_process

configure_process()
