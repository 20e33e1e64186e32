"""`drills report`: the quarterly drill report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from drills.cli.common import (
    KEY_CONFIG_HELP,
    STORE_HELP,
    Subparsers,
    add_command,
    add_config,
    add_reports_dir,
    add_schedule,
    add_store,
)
from drills.errors import EXIT_OK


def add_parsers(sub: Subparsers) -> None:
    report = add_command(
        sub,
        "report",
        _report,
        help="write the quarterly drill report (Markdown and self-contained HTML)",
        description=(
            "Build reports/<QUARTER>/report.md and report.html from the quarter's run records: "
            "summary, one row per drill, timeline charts, RTO/RPO against objectives and their "
            "trend over four quarters, the error budget, and coverage of the required drills. "
            "A record that fails verification (drills verify: chain, signature) is left out, "
            "and the report and stderr say which and why."
        ),
    )
    report.add_argument("--quarter", help="e.g. 2026-Q4 (default: the current quarter, UTC)")
    add_reports_dir(report)
    add_config(report, KEY_CONFIG_HELP)
    add_store(report, STORE_HELP + ": the report is made from the store's records")
    add_schedule(report, "required drills, for coverage (default: scenarios/schedule.yaml)")
    report.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="the report goes to OUT/<QUARTER>/ (default: reports)",
    )


def _report(args: argparse.Namespace) -> int:
    from drills.records import reader_key
    from drills.report import run_report
    from drills.store.readers import runs_from_store, store_in_effect

    schedule = args.schedule if args.schedule.exists() else None
    if schedule is None:
        print(
            f"drills: no schedule at {args.schedule}: the report has no coverage section",
            file=sys.stderr,
        )
    left_out: list[str] = []
    key = reader_key(args.reports_dir, args.config)
    store = store_in_effect(args)
    if store is None:
        md, html = run_report(args.quarter, args.reports_dir, schedule, args.out, left_out, key)
    else:
        with runs_from_store(store, key, left_out) as runs:
            md, html = run_report(
                args.quarter, args.reports_dir, schedule, args.out, left_out, key, runs
            )
    for line in left_out:
        print(f"drills: {line}", file=sys.stderr)
    print(f"{md}\n{html}")
    return EXIT_OK
