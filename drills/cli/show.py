"""`drills show RUN`: a past run's end-of-drill tables (or its outcome as JSON)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from drills.cli.common import (
    KEY_CONFIG_HELP,
    STORE_HELP,
    Subparsers,
    add_command,
    add_config,
    add_reports_dir,
    add_store,
)
from drills.errors import DrillsError
from drills.records.files import record_files

if TYPE_CHECKING:
    from drills.records import RunRecord


def add_parsers(sub: Subparsers) -> None:
    show = add_command(
        sub,
        "show",
        _show,
        help="print a past run's tables and verdict (a run id, a record file, or `last`)",
        description=(
            "Print the end-of-drill tables of a run from its record: RUN is a run id "
            "(20261123T201923Z-db-failover), a record file, or `last` for the newest record in "
            "the reports directory. The exit status says the verdict: 0 pass, 1 an objective "
            "missed, 2 anything else (error, aborted, crashed)."
        ),
    )
    show.add_argument("run", metavar="RUN", help="run id, record file, or `last`")
    add_reports_dir(show)
    show.add_argument("--json", action="store_true", help="the outcome as JSON, as `run --json`")
    add_store(show, STORE_HELP + ": the run is looked up there (its chain checked)")
    add_config(show, KEY_CONFIG_HELP)


def find_record(run: str, reports_dir: Path) -> Path:
    as_file = Path(run)
    if run.endswith(".json") and as_file.is_file():
        return as_file
    records = record_files(reports_dir)
    if run == "last":
        if not records:
            raise DrillsError(f"no run record in {reports_dir}")
        return records[-1]
    found = reports_dir / f"{run}.json"
    if found.is_file():
        return found
    newest = f" (the newest: {records[-1].stem})" if records else ""
    raise DrillsError(f"no run {run!r} in {reports_dir}{newest}")


def _show(args: argparse.Namespace) -> int:
    from drills.cli.run_outputs import exit_status, summary
    from drills.summary import render

    path, record = _find(args)
    status = exit_status(record)
    if args.json:
        print(json.dumps(summary(record, str(path), status), indent=2))
        return status
    host = f" on {record.host.hostname}" if record.host and record.host.hostname else ""
    print(f"run {record.run_id}: {record.scenario.name}, {record.started_at}{host}\n")
    print(render(record))
    print(f"record: {path}")
    return status


def _find(args: argparse.Namespace) -> tuple[Path, RunRecord]:
    from drills.records import load_record, reader_key
    from drills.store.readers import named_run, runs_from_store, store_in_effect

    store = store_in_effect(args)
    if store is None:
        path = find_record(args.run, args.reports_dir)
        return path, load_record(path)
    left_out: list[str] = []
    with runs_from_store(store, reader_key(args.reports_dir, args.config), left_out) as runs:
        run = named_run(runs, args.run, store.display)
    return run.path, run.record
