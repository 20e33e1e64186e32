"""What `drills run` gives back after a drill: the end-of-drill tables, the record's path, the
metrics push, the exit status, and on request a JUnit file (`--junit`) and the summary as JSON
on standard output (`--json`, everything else then on standard error)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from drills.errors import (
    EXIT_ABORTED,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_MISSED,
    EXIT_OK,
    DrillsError,
    ScenarioError,
)
from drills.files import os_error_text

if TYPE_CHECKING:
    from drills.records import RunRecord
    from drills.runner import RunResult


def exit_status(record: RunRecord) -> int:
    """1 only for an objective missed; any other verdict but `pass` (`error`, `aborted` re-judged
    by `check`...) is 2, never 1."""
    from drills.checker import Overall

    return {Overall.PASS: EXIT_OK, Overall.FAIL: EXIT_MISSED}.get(record.verdict, EXIT_ERROR)


def run_status(result: RunResult) -> int:
    if result.interrupted:
        return EXIT_INTERRUPTED
    if result.record_error:
        return EXIT_ERROR
    if result.aborted:
        return EXIT_ABORTED
    return exit_status(result.record)


def finish(args: argparse.Namespace, result: RunResult) -> int:
    from drills.metrics import after_drill
    from drills.summary import render

    out = sys.stderr if args.json else sys.stdout
    print(render(result.record), file=out)
    record_file = "" if result.record_error else str(result.record_path)
    if result.record_error:
        print(f"drills: {result.record_error}", file=sys.stderr)
    else:
        print(f"record: {record_file}", file=out)
    if not result.interrupted:
        try:
            note = after_drill(result.record, args.pushgateway)
        except DrillsError as exc:  # the drill's verdict stands; the push is reported
            print(f"drills: {exc}", file=sys.stderr)
        else:
            if note:
                print(note, file=out)
    status = run_status(result)
    if args.junit is not None and not _junit(args, result.record, record_file):
        status = max(status, EXIT_ERROR) if status != EXIT_INTERRUPTED else status
    if args.json:
        print(json.dumps(summary(result.record, record_file, status), indent=2))
    return status


def _junit(args: argparse.Namespace, record: RunRecord, record_file: str) -> bool:
    from drills.records.junit import write_junit

    try:
        write_junit(record, args.junit, record_file)
    except OSError as exc:
        print(f"drills: --junit {args.junit}: {os_error_text(exc)}", file=sys.stderr)
        return False
    return True


def refused(args: argparse.Namespace, exc: DrillsError) -> None:
    """A drill that never ran still leaves its JUnit file, with the reason as an error."""
    from drills.records.junit import write_junit_error

    if args.junit is None:
        return
    problems = [str(p) for p in exc.problems] if isinstance(exc, ScenarioError) else [str(exc)]
    try:
        write_junit_error(args.junit, args.scenario, "; ".join(problems))
    except OSError as err:
        print(f"drills: --junit {args.junit}: {os_error_text(err)}", file=sys.stderr)


def summary(record: RunRecord, record_file: str, status: int) -> dict[str, Any]:
    """The run's outcome for a program: verdicts with their figures, and where the record is."""
    from drills.records.junit import judgement

    data = record.data()
    return {
        "run_id": record.run_id,
        "scenario": record.scenario.name,
        "verdict": record.verdict.value,
        "exit_status": status,
        "error": record.error,
        "aborted": record.aborted,
        "objectives": {
            name: data["verdicts"][name] | {"text": judgement(name, found)}
            for name, found in record.verdicts.items()
        },
        "measurements": data["measurements"],
        "record": record_file or None,
        "history": record.history or None,
    }
