"""Command line: run, validate, check, report, due, schedule, metrics, exporter, proxy, list.

Exit status: 0 every objective met; 1 an objective missed; 2 the drill could not run or could
not be judged (invalid scenario, lab failure, a failing step, an objective that could not be
measured); 130 interrupted (SIGINT or SIGTERM), after cleaning up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from drills import __version__, metrics, schedule_cli
from drills.checker import check
from drills.durations import parse_duration
from drills.errors import (
    EXIT_ABORTED,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_MISSED,
    EXIT_OK,
    DrillsError,
    RecordError,
    ScenarioError,
    report_error,
)
from drills.history import load_history
from drills.records import RunInfo, check_config_of, load_record

EPILOG = """\
exit status:
  0    every objective met
  1    an objective missed (RTO, RPO or availability)
  2    the drill could not run or could not be judged: invalid scenario, lab failure,
       failing step, an objective that could not be measured
  3    aborted: a stop condition (abort_if, --max-downtime) fired; everything reverted
  130  interrupted by SIGINT, SIGTERM or SIGHUP (faults reverted and lab removed first)

examples:
  drills validate scenarios/*.yaml
  drills run scenarios/db-failover.yaml
  drills run scenarios/db-failover.yaml --keep-lab --reports-dir /tmp/runs
  drills check reports/runs/20261123T201500Z-db-failover.json
  drills report --quarter 2026-Q4
  drills due                # exit status 1 when a required drill is overdue
  drills schedule --cron
  drills run scenarios/db-failover.yaml --pushgateway http://127.0.0.1:9091
  drills metrics --textfile /var/lib/node_exporter/drills.prom
  drills exporter --port 9469
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drills",
        description=(
            "Disaster-recovery drills with measurements: inject faults into real targets while "
            "probes record every operation, then measure downtime, RTO, the data-loss window "
            "(RPO) and availability against the scenario's objectives."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"drills {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run a drill: start the lab, inject the faults, measure, record, clean up",
        description="Run one scenario and print its verdict; write a run record and history.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("scenario", type=Path, help="scenario YAML file")
    run.add_argument(
        "--reports-dir",
        type=Path,
        default=Path("reports/runs"),
        help="where run records and histories go (default: reports/runs)",
    )
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
    run.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        default=None,
        help="drills.yaml with the containers faults may touch (default: $DRILLS_CONFIG, "
        "./drills.yaml, ~/.config/drills/drills.yaml)",
    )
    run.add_argument(
        "--pushgateway",
        metavar="URL",
        default=None,
        help="push the run's metrics to this Pushgateway (default: $DRILLS_PUSHGATEWAY, if set)",
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

    validate = sub.add_parser(
        "validate",
        help="check scenario (and schedule) files without touching anything",
        description=(
            "Validate scenario files, and schedule files (a top-level `required:` list); each "
            "problem is one line: file:line: key: message."
        ),
    )
    validate.add_argument("files", type=Path, nargs="+", help="scenario YAML files")

    chk = sub.add_parser(
        "check",
        help="re-run the checker on a saved run record and its history",
        description="Recompute measurements and verdicts from RECORD's history file.",
    )
    chk.add_argument("record", type=Path, help="run record (reports/runs/*.json)")
    chk.add_argument("--json", action="store_true", help="print the recomputed record as JSON")

    report = sub.add_parser(
        "report",
        help="write the quarterly drill report (Markdown and self-contained HTML)",
        description=(
            "Build reports/<QUARTER>/report.md and report.html from the quarter's run records: "
            "summary, one row per drill, timeline charts, RTO/RPO against objectives and their "
            "trend over four quarters, the error budget, and coverage of the required drills."
        ),
    )
    report.add_argument("--quarter", help="e.g. 2026-Q4 (default: the current quarter, UTC)")
    report.add_argument(
        "--reports-dir",
        type=Path,
        default=Path("reports/runs"),
        help="run records (default: reports/runs)",
    )
    report.add_argument(
        "--schedule",
        type=Path,
        default=Path("scenarios/schedule.yaml"),
        help="required drills, for coverage (default: scenarios/schedule.yaml)",
    )
    report.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="the report goes to OUT/<QUARTER>/ (default: reports)",
    )

    schedule_cli.add_parsers(sub)
    metrics.add_parsers(sub)

    verify = sub.add_parser(
        "verify",
        help="check the hash chain of the run records and every record's integrity",
        description=(
            "Each record carries the sha256 of the record before it, of its own history and of "
            "itself. Verify recomputes them and names the first broken link. Exit status 0 when "
            "intact, 1 when something changed, 2 when the directory cannot be read."
        ),
    )
    verify.add_argument("--reports-dir", type=Path, default=Path("reports/runs"))

    sub.add_parser(
        "recover",
        help="undo what drills that died (even by SIGKILL) left behind",
        description=(
            "Read the crash journals of runs whose harness is gone ($DRILLS_STATE_DIR, default "
            "~/.local/state/drills) and undo what they record: resume stopped processes, kill "
            "and remove labs, heal Toxiproxy links. A new drill refuses to start until then."
        ),
    )

    sub.add_parser("list", help="list the fault, step, probe and lab kinds this build knows")

    proxy = sub.add_parser(
        "proxy",
        help="run drills' fault proxy with a Toxiproxy-compatible HTTP API until Ctrl-C",
        description=(
            "Serve the fault proxy on its own, driven through Toxiproxy's HTTP API (the subset "
            "drills implements). Scenarios reach it with `network: {toxiproxy: URL, links: ...}`."
        ),
    )
    proxy.add_argument("--api", default="127.0.0.1:8474", help="HOST:PORT of the HTTP API")
    proxy.add_argument(
        "--link",
        action="append",
        default=[],
        metavar="NAME=LISTEN,UPSTREAM",
        help="create a link at start, e.g. db=127.0.0.1:6432,127.0.0.1:5432 (repeatable)",
    )
    return parser


def _validate(files: list[Path]) -> int:
    from drills.scenario import load_scenario
    from drills.schedule import is_schedule, load_schedule

    status = EXIT_OK
    for file in files:
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
    from drills.runner import RunOptions, run_drill
    from drills.summary import render

    if args.dry_run:
        from drills.dryrun import describe
        from drills.scenario import load_scenario

        print(describe(load_scenario(args.scenario), args.config))
        return EXIT_OK
    max_downtime = None
    if args.max_downtime is not None:
        try:
            max_downtime = parse_duration(args.max_downtime)
        except ValueError as exc:
            raise DrillsError(f"--max-downtime: {exc}") from None
    result = run_drill(
        args.scenario,
        RunOptions(
            reports_dir=args.reports_dir,
            keep_lab=args.keep_lab,
            live=args.live,
            max_downtime=max_downtime,
            config=args.config,
        ),
    )
    print(render(result.record))
    print(f"record: {result.record_path}")
    if not result.interrupted:
        try:
            note = metrics.after_drill(result.record, args.pushgateway)
        except DrillsError as exc:  # the drill's verdict stands; the push is reported
            print(f"drills: {exc}", file=sys.stderr)
        else:
            if note:
                print(note)
    if result.interrupted:
        return EXIT_INTERRUPTED
    if result.aborted:
        return EXIT_ABORTED
    return {"pass": EXIT_OK, "fail": EXIT_MISSED}.get(result.record["verdict"], EXIT_ERROR)


def _check(args: argparse.Namespace) -> int:
    import json

    from drills.records import build_record
    from drills.summary import render

    record = load_record(args.record)
    config = check_config_of(record, args.record)
    history_path = args.record.parent / str(record.get("history", ""))
    history = load_history(history_path)
    result = check(history, config)
    try:
        info = _run_info(record, history.clock.wall_ns)
        started, finished = record["started_at"], record["finished_at"]
    except (KeyError, TypeError) as exc:
        raise RecordError(f"{args.record}: record lacks {exc}") from exc
    rebuilt = build_record(info, history, config, result, history_path.name)
    rebuilt["started_at"], rebuilt["finished_at"] = started, finished
    rebuilt["host"] = record.get("host")
    if args.json:
        print(json.dumps(rebuilt, indent=2))
    else:
        print(render(rebuilt))
    return {"pass": EXIT_OK, "fail": EXIT_MISSED}.get(rebuilt["verdict"], EXIT_ERROR)


def _run_info(record: dict[str, Any], wall_ns: int) -> RunInfo:
    return RunInfo(
        run_id=record["run_id"],
        scenario_name=record["scenario"]["name"],
        scenario_file=record["scenario"]["file"],
        scenario_sha256=record["scenario"]["sha256"],
        description=record["scenario"].get("description", ""),
        started_wall_ns=wall_ns,
        finished_wall_ns=wall_ns,
        phases_s={},
        lab=record.get("lab", {}),
        error=record.get("error"),
    )


def _report(args: argparse.Namespace) -> int:
    from drills.report import run_report

    schedule = args.schedule if args.schedule.exists() else None
    if schedule is None:
        print(
            f"drills: no schedule at {args.schedule}: the report has no coverage section",
            file=sys.stderr,
        )
    md, html = run_report(args.quarter, args.reports_dir, schedule, args.out)
    print(f"{md}\n{html}")
    return EXIT_OK


def _recover() -> int:
    # Every kind of journal entry registers where its change is made: import them all.
    import drills.labs
    import drills.network.scenario_links
    import drills.steps  # noqa: F401
    from drills.journal import orphaned, recover

    found = list(orphaned())
    if not found:
        print("nothing to recover")
        return EXIT_OK
    for path in found:
        print(f"{path.stem}:")
        for action in recover(path) or ["nothing left to undo"]:
            print(f"  {action}")
    return EXIT_OK


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


def _list() -> int:
    from drills.labs import LABS
    from drills.steps import STEPS
    from probes import PROBES

    print(
        "steps (faults marked *): "
        + ", ".join(f"{k}{'*' if c.disruptive else ''}" for k, c in STEPS.items())
    )
    print("probes: " + ", ".join(PROBES.kinds()))
    print("labs: " + ", ".join(LABS.kinds()))
    return EXIT_OK


def _proxy(args: argparse.Namespace) -> int:
    import signal
    import threading

    from drills.network.api import ApiServer
    from drills.network.proxy import Proxy

    def address(text: str) -> tuple[str, int]:
        host, _, port = text.strip().rpartition(":")
        if not host or not port.isdigit():
            raise DrillsError(f"{text!r} is not HOST:PORT")
        return host, int(port)

    links = []
    for spec in args.link:
        name, _, rest = spec.partition("=")
        listen, _, upstream = rest.partition(",")
        if not name or not listen or not upstream:
            raise DrillsError(f"--link {spec!r}: expected NAME=LISTEN,UPSTREAM")
        links.append((name, address(listen), address(upstream)))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Proxy(lambda link, change, _: print(f"{link}: {change}", flush=True)) as proxy:
        for name, listen, upstream in links:
            proxy.add_link(name, upstream, listen)
        try:
            server = ApiServer(proxy, address(args.api))
        except OSError as exc:
            raise DrillsError(f"cannot serve the API on {args.api}: {exc.strerror}") from exc
        server.start()
        print(f"fault proxy API on {server.url} (Toxiproxy-compatible); Ctrl-C stops", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "validate":
            return _validate(args.files)
        if args.command == "check":
            return _check(args)
        if args.command == "list":
            return _list()
        if args.command == "report":
            return _report(args)
        if args.command == "proxy":
            return _proxy(args)
        if args.command == "metrics":
            return metrics.run_metrics(args)
        if args.command == "exporter":
            return metrics.run_exporter(args)
        if args.command == "recover":
            return _recover()
        if args.command == "verify":
            return _verify(args)
        if args.command == "due":
            return schedule_cli.run_due(args)
        if args.command == "schedule":
            return schedule_cli.run_schedule(args)
        parser.print_help()
        return EXIT_ERROR
    except DrillsError as exc:
        return report_error(exc)
    except KeyboardInterrupt:
        print("drills: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
