"""`drills verify`: the hash chain of the run records."""

from __future__ import annotations

import argparse
import sys

from drills.cli.common import Subparsers, add_command, add_reports_dir
from drills.errors import EXIT_MISSED, EXIT_OK, DrillsError


def add_parsers(sub: Subparsers) -> None:
    verify = add_command(
        sub,
        "verify",
        _verify,
        help="check the hash chain of the run records and every record's integrity",
        description=(
            "Each record carries the sha256 of the record before it, of its own history and of "
            "itself. Verify recomputes them and names the first broken link. Exit status 0 when "
            "intact, 1 when something changed, 2 when the directory cannot be read."
        ),
    )
    add_reports_dir(verify, help=None)


def _verify(args: argparse.Namespace) -> int:
    from drills.records import verify_chain

    if not args.reports_dir.is_dir():
        raise DrillsError(f"{args.reports_dir}: no such directory")
    checked, problems = verify_chain(args.reports_dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{checked} records checked: {len(problems)} problems; first: {problems[0]}")
        return EXIT_MISSED
    print(f"{checked} records checked: chain intact")
    return EXIT_OK
