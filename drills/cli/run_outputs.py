"""What `drills run` gives back after a drill: the end-of-drill tables, the record's path, the
metrics push, the exit status, and on request a JUnit file (`--junit`) and the summary as JSON
on standard output (`--json`, everything else then on standard error)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from drills.errors import (
    EXIT_ABORTED,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_MISSED,
    EXIT_OK,
    DrillsError,
    ScenarioError,
    exit_code,
)
from drills.files import os_error_text
from drills.records.junit import write_junit, write_junit_error

if TYPE_CHECKING:
    from drills.records import RunRecord
    from drills.runner import RunResult
    from drills.store.settings import Store
    from drills.store.upload import Sent


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


def starting(args: argparse.Namespace) -> None:
    """Replace an earlier run's JUnit file at once: if this drill never gets to write its own
    (SIGKILL), CI must not read the last one as this one's."""
    if args.junit is not None:
        _write(args, lambda: write_junit_error(args.junit, args.scenario, "it did not finish"))


def finish(args: argparse.Namespace, result: RunResult, store: Store | None = None) -> int:
    from drills.metrics import after_drill
    from drills.summary import render

    out = sys.stderr if args.json else sys.stdout
    print(render(result.record), file=out)
    record_file = "" if result.record_error else str(result.record_path)
    if result.record_error:
        print(f"drills: {result.record_error}", file=sys.stderr)
    else:
        print(f"record: {record_file}", file=out)
    status = run_status(result)
    sent = _send(store, result, out)
    junit_error = ""
    if args.junit is not None:  # before the push, which may be slow
        junit_error = _write(args, lambda: write_junit(result.record, args.junit, record_file))
        if junit_error and status != EXIT_INTERRUPTED:
            status = max(status, EXIT_ERROR)
    if not result.interrupted:
        try:
            note = after_drill(result.record, args.pushgateway)
        except DrillsError as exc:  # the drill's verdict stands; the push is reported
            print(f"drills: {exc}", file=sys.stderr)
        else:
            if note:
                print(note, file=out)
    if record_file and not args.no_report:  # last: JUnit and the push never wait for it
        _run_report(result, out)
    if args.json:
        data = summary(result.record, record_file, status)
        data |= {"record_error": result.record_error, "junit_error": junit_error or None}
        data |= {"store": sent.data() if sent else None}
        print(json.dumps(data, indent=2))
    return status


def _send(store: Store | None, result: RunResult, out: TextIO) -> Sent | None:
    """The record to the store, or to the spool; where it went is said, never fatal."""
    from drills.store.upload import send

    if store is None or result.record_error:
        return None
    try:
        sent = send(store, result.record_path)
    except (DrillsError, OSError) as exc:
        print(f"drills: the record was neither stored nor spooled: {exc}", file=sys.stderr)
        return None
    for line in sent.lines():
        print(line, file=sys.stderr if line.startswith("drills:") else out)
    return sent


def _run_report(result: RunResult, out: TextIO) -> None:
    """The run's own report beside its record; a failure to write it is said, not fatal."""
    from drills.history_file import load_history
    from drills.run_report import write_run_report

    try:
        history = load_history(result.history_path)
        page = write_run_report(result.record, history, result.record_path.parent)
    except Exception as exc:  # the drill's outcome stands whatever the chart
        print(f"drills: the run's report was not written: {exc!r}", file=sys.stderr)
    else:
        print(f"report: {page}", file=out)


def _write(args: argparse.Namespace, write: Callable[[], None]) -> str:
    """Write the JUnit file; "" or why it could not be written (said on stderr)."""
    try:
        write()
    except OSError as exc:
        why = f"--junit {args.junit}: {os_error_text(exc)}"
        print(f"drills: {why}", file=sys.stderr)
        return why
    return ""


def refused(args: argparse.Namespace, exc: BaseException) -> None:
    """A drill that never ran (bad input, a lock held, Ctrl-C before it started, a bug) still
    leaves its JUnit file, and with --json its outcome, with the reason as an error."""
    if isinstance(exc, ScenarioError):
        reason = "; ".join(str(p) for p in exc.problems)
    elif isinstance(exc, DrillsError):
        reason = str(exc)
    elif isinstance(exc, KeyboardInterrupt):
        reason = "interrupted"
    else:
        reason = f"internal error: {exc!r}"
    if args.junit is not None:
        _write(args, lambda: write_junit_error(args.junit, args.scenario, f"did not run: {reason}"))
    if args.json:
        outcome = {"verdict": "error", "exit_status": exit_code(exc), "error": reason}
        print(json.dumps(outcome | {"record": None}, indent=2))


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
