"""`drills run`, `drills validate` and `drills check`: run a drill, validate scenario files,
re-judge a saved run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from drills.cli.common import (
    EPILOG,
    STORE_HELP,
    Subparsers,
    add_command,
    add_config,
    add_reports_dir,
    add_store,
)
from drills.errors import (
    EXIT_ERROR,
    EXIT_OK,
    DrillsError,
    ScenarioError,
)

if TYPE_CHECKING:
    from drills.records import RunInfo, RunRecord


def add_parsers(sub: Subparsers) -> None:
    _add_run(sub)
    validate = add_command(
        sub,
        "validate",
        _validate,
        help="check scenario (and schedule) files without touching anything",
        description=(
            "Validate scenario files, and schedule files (a top-level `required:` list); each "
            "problem is one line: file:line: key: message."
        ),
    )
    validate.add_argument("files", type=Path, nargs="+", help="scenario YAML files")
    chk = add_command(
        sub,
        "check",
        _check,
        help="re-run the checker on a saved run record and its history",
        description="Recompute measurements and verdicts from RECORD's history file.",
    )
    chk.add_argument("record", type=Path, help="run record (reports/runs/*.json)")
    chk.add_argument("--json", action="store_true", help="print the recomputed record as JSON")
    chk.add_argument(
        "--junit", metavar="PATH", type=Path, help="also write the verdicts as a JUnit XML file"
    )


def _add_run(sub: Subparsers) -> None:
    run = add_command(
        sub,
        "run",
        _run,
        help="run a drill: start the lab, inject the faults, measure, record, clean up",
        description="Run one scenario and print its verdict; write a run record and history.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("scenario", type=Path, help="scenario YAML file")
    add_reports_dir(run, "where run records and histories go (default: reports/runs)")
    run.add_argument(
        "--keep-lab",
        action="store_true",
        help="leave the lab running after the drill, for inspection (prints how to remove it)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved targets, probes and timeline, and touch nothing",
    )
    run.add_argument(
        "--max-downtime",
        metavar="DURATION",
        help="abort the drill (revert everything, exit 3) once the service probe has been down "
        "this long in total, e.g. 2m",
    )
    add_config(run)
    add_store(
        run,
        STORE_HELP + ": the record and history go there too (spooled if it cannot be reached), "
        "and the drill's targets are leased there, so that no other host drills them at once",
    )
    run.add_argument(
        "--auto-ack",
        metavar="DURATION",
        help="acknowledge each manual step automatically after DURATION (unattended "
        "rehearsals; recorded as automatic), e.g. 30s",
    )
    run.add_argument(
        "--participant",
        metavar="NAME:ROLE",
        action="append",
        default=[],
        help="someone taking part, e.g. ana:dba (repeat it; added to the scenario's "
        "participants, recorded)",
    )
    run.add_argument(
        "--pushgateway",
        metavar="URL",
        default=None,
        help="push the run's metrics to this Pushgateway (default: $DRILLS_PUSHGATEWAY, if set)",
    )
    run.add_argument(
        "--junit",
        metavar="PATH",
        type=Path,
        help="also write a JUnit XML file for CI: one test case per objective (a missed one is "
        "a failure, one not measured or a drill that could not run is an error)",
    )
    run.add_argument(
        "--no-report",
        action="store_true",
        help="do not write the run's own report (<run>.html, .md, .png beside the record)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print the outcome as JSON on standard output (verdicts, figures, record path); "
        "the tables and the live view go to standard error",
    )
    live = run.add_mutually_exclusive_group()
    live.add_argument(
        "--live",
        dest="live",
        action="store_true",
        default=None,
        help="redraw a live status block (default when stderr is a terminal)",
    )
    live.add_argument(
        "--no-live",
        dest="live",
        action="store_false",
        help="one line per event instead of a live block",
    )


def _validate(args: argparse.Namespace) -> int:
    from drills.scenario import load_scenario
    from drills.schedule import is_schedule, load_schedule

    status = EXIT_OK
    for file in args.files:
        try:
            if is_schedule(file):
                load_schedule(file)
                print(f"{file}: ok (schedule)")
                continue
            load_scenario(file)
            print(f"{file}: ok")
        except ScenarioError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            status = EXIT_ERROR
    return status


def _run(args: argparse.Namespace) -> int:
    from drills.cli.run_outputs import finish, refused, starting
    from drills.participants import parse_participant
    from drills.runner import RunOptions, run_drill
    from drills.store.readers import store_in_effect

    if args.dry_run:
        from drills.dryrun import describe
        from drills.scenario import load_scenario

        if args.junit is not None or args.json:
            raise DrillsError("--dry-run runs nothing: --junit and --json do not apply")
        print(describe(load_scenario(args.scenario, config=args.config), args.config))
        return EXIT_OK
    starting(args)
    try:
        max_downtime = _duration(args.max_downtime, "--max-downtime")
        auto_ack = _duration(args.auto_ack, "--auto-ack")
        participants = [parse_participant(text) for text in args.participant]
        store = store_in_effect(args)
        result = run_drill(
            args.scenario,
            RunOptions(
                reports_dir=args.reports_dir,
                keep_lab=args.keep_lab,
                live=args.live,
                max_downtime=max_downtime,
                config=args.config,
                auto_ack=auto_ack,
                participants=participants,
                store=store,
            ),
        )
    except BaseException as exc:
        refused(args, exc)
        raise
    return finish(args, result, store)


def _duration(text: str | None, option: str) -> float | None:
    from drills.durations import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise DrillsError(f"{option}: {exc}") from None


def _check(args: argparse.Namespace) -> int:
    import json

    from drills.checker import check
    from drills.cli.run_outputs import exit_status
    from drills.history_file import load_history
    from drills.records import build_record, load_record
    from drills.summary import render

    record = load_record(args.record)
    config = record.check_config()
    history_path = args.record.parent / record.history
    history = load_history(history_path)
    result = check(history, config)
    rebuilt = build_record(
        _run_info(record, history.clock.wall_ns), history, config, result, history_path.name
    ).model_copy(
        update={
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "host": record.host,
        }
    )
    if args.junit is not None:
        from drills.files import os_error_text
        from drills.records.junit import write_junit

        try:
            write_junit(rebuilt, args.junit, str(args.record))
        except OSError as exc:
            raise DrillsError(f"--junit {args.junit}: {os_error_text(exc)}") from None
    if args.json:
        print(json.dumps(rebuilt.data(), indent=2))
    else:
        print(render(rebuilt))
    return exit_status(rebuilt)


def _run_info(record: RunRecord, wall_ns: int) -> RunInfo:
    from drills.participants import Participant
    from drills.records import RunInfo

    return RunInfo(
        run_id=record.run_id,
        scenario_name=record.scenario.name,
        scenario_file=record.scenario.file,
        scenario_sha256=record.scenario.sha256,
        description=record.scenario.description,
        started_wall_ns=wall_ns,
        finished_wall_ns=wall_ns,
        phases_s={},
        lab=record.lab,
        error=record.error,
        aborted=record.aborted,
        participants=[Participant(name=p.name, role=p.role) for p in record.participants],
    )
