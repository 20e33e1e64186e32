"""`drills due` and `drills schedule`: the required rehearsals of a quarter, and how to run them.

`drills due` reads the schedule (`scenarios/schedule.yaml`) and the run records, and says for
each required drill whether it is done, upcoming, due or overdue this quarter. `drills schedule`
prints, without installing anything, the cron, systemd or Kubernetes entries that start each
required drill on the first day of its window at 02:00 UTC. The states are computed and shown
by `drills.schedule`; the entries are written by `drills.schedule.entries`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from drills.cli.common import (
    KEY_CONFIG_HELP,
    SCHEDULE,
    STORE_HELP,
    Subparsers,
    add_command,
    add_config,
    add_reports_dir,
    add_schedule,
    add_store,
    wrap,
)
from drills.errors import (
    EXIT_MISSED,
    EXIT_OK,
    DrillsError,
    Problem,
    ScenarioError,
)
from drills.quarters import Quarter

if TYPE_CHECKING:
    from drills.schedule import Schedule

SCHEDULE_HELP = f"the required drills (default: {SCHEDULE})"

DUE_EPILOG = """\
states:
  done      a run of the scenario passed inside its window
  upcoming  the window has not opened yet
  due       the window is open and no run has passed in it yet
  overdue   the window closed without a passing run

exit status:
  0    nothing is overdue
  1    a required drill is overdue (named on stderr)
  2    bad input: invalid schedule file, unreadable run record, bad --quarter or --now

examples:
  drills due
  drills due --quarter 2026-Q3
  drills due --now 2026-12-01T00:00:00Z        # what would be overdue on 1 December
  drills due --reports-dir /srv/drills/reports/runs --json
"""

SCHEDULE_EPILOG = """\
Each required drill starts at 02:00 UTC on the first day of its window: months 1,4,7,10 for
`month: 1` (or no month), 2,5,8,11 for `month: 2`, 3,6,9,12 for `month: 3`. Nothing is
installed: review the output, then install it yourself.

examples:
  drills schedule --cron --workdir /srv/drills --drills-command /srv/drills/.venv/bin/drills
  (crontab -l; drills schedule --cron --workdir /srv/drills) | crontab -   # to install it
  drills schedule --systemd --workdir /srv/drills   # then split at the `# file:` lines
  drills schedule --kubernetes --image registry.example.com/drills:1.0 | kubectl apply -f -
"""


def add_parsers(sub: Subparsers) -> None:
    """Add the `due` and `schedule` subcommands to the `drills` parser."""
    _add_due(sub)
    _add_schedule(sub)


def _add_due(sub: Subparsers) -> None:
    due = add_command(
        sub,
        "due",
        run_due,
        help="which required drills are done, upcoming, due or overdue this quarter",
        description=wrap(
            "For every drill the schedule requires this quarter (or --quarter): its state, its "
            "window, its runs in the window (how many, how many failed, whether it failed and "
            "was run again) and the last time it passed. Exit status 1 when one is overdue."
        ),
        epilog=DUE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_schedule(due, SCHEDULE_HELP)
    add_reports_dir(due)
    add_config(due, KEY_CONFIG_HELP)
    add_store(due, STORE_HELP + ": the runs that count are the store's")
    due.add_argument(
        "--quarter",
        help="e.g. 2026-Q4 (default: the quarter of --now, i.e. the current quarter, UTC)",
    )
    due.add_argument(
        "--now",
        metavar="ISO8601",
        help=(
            "judge as of this time instead of now, e.g. 2026-12-01T00:00:00Z or 2026-12-01 "
            "(UTC when no offset is given); runs started after it do not count"
        ),
    )
    due.add_argument("--json", action="store_true", help="print the states as JSON")


def _add_schedule(sub: Subparsers) -> None:
    sched = add_command(
        sub,
        "schedule",
        run_schedule,
        help="print cron, systemd or Kubernetes entries that run the required drills",
        description=wrap(
            "Print, without installing anything, the entries that run every required drill of "
            "the schedule on its cadence: crontab lines, systemd service and timer units, or "
            "Kubernetes CronJobs."
        ),
        epilog=SCHEDULE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kind = sched.add_mutually_exclusive_group(required=True)
    kind.add_argument(
        "--cron",
        dest="format",
        action="store_const",
        const="cron",
        help="crontab lines that cd to WORKDIR and run each drill with --no-live",
    )
    kind.add_argument(
        "--systemd",
        dest="format",
        action="store_const",
        const="systemd",
        help="a oneshot .service and a persistent .timer per drill, each after `# file: NAME`",
    )
    kind.add_argument(
        "--kubernetes",
        dest="format",
        action="store_const",
        const="kubernetes",
        help="one batch/v1 CronJob per drill (concurrencyPolicy Forbid), separated by ---",
    )
    add_schedule(sched, SCHEDULE_HELP)
    sched.add_argument(
        "--workdir",
        type=Path,
        help=(
            "directory the drills run in; scenario files are relative to it (default: the "
            "current directory for cron and systemd; the image's for Kubernetes)"
        ),
    )
    sched.add_argument(
        "--drills-command",
        default="drills",
        metavar="COMMAND",
        help=(
            "how to invoke drills (default: drills); cron's PATH is short, so an absolute path "
            "such as /srv/drills/.venv/bin/drills is safer"
        ),
    )
    sched.add_argument(
        "--image",
        default="drills:latest",
        help="container image for --kubernetes (default: drills:latest)",
    )
    sched.add_argument(
        "--store-secret",
        metavar="NAME",
        help=(
            "--kubernetes: the Secret holding the results store, key `url` (no password) as "
            "$DRILLS_STORE and key `password` mounted as $DRILLS_STORE_PASSWORD_FILE; the "
            "CronJobs then write every record to the store (docs/schedule.md)"
        ),
    )
    sched.add_argument(
        "--service-account", metavar="NAME", help="--kubernetes: the pods' service account"
    )
    sched.add_argument(
        "--state-claim",
        metavar="NAME",
        help=(
            "--kubernetes: a PersistentVolumeClaim mounted on /var/lib/drills as "
            "$DRILLS_STATE_DIR, so that a record the store could not take (the spool) and a "
            "crash journal outlive the pod"
        ),
    )


# --- drills due ---------------------------------------------------------------------------


def run_due(args: argparse.Namespace) -> int:
    from drills.records import load_runs, reader_key
    from drills.schedule import State, status
    from drills.schedule.due import due_json, due_summary, due_table, last_day
    from drills.store.readers import runs_from_store, store_in_effect

    now = _parse_now(args.now) if args.now else datetime.now(UTC)
    quarter = _parse_quarter(args.quarter) if args.quarter else Quarter.of(now)
    schedule = _load_schedule(args.schedule)
    left_out: list[str] = []  # records failing verification do not count as done
    key = reader_key(args.reports_dir, args.config)
    store = store_in_effect(args)
    if store is not None:
        with runs_from_store(store, key, left_out) as runs:
            pass
    else:
        if not args.reports_dir.is_dir():
            _warn(f"no run records: {args.reports_dir} is not a directory")
        runs = load_runs(args.reports_dir, left_out, key)
    statuses = status(schedule, runs, quarter, now)
    overdue = [s for s in statuses if s.state is State.OVERDUE]
    for line in left_out:
        _warn(line)
    if args.json:
        print(json.dumps(due_json(statuses, quarter, now, left_out), indent=2))
    else:
        print(due_table(statuses, now))
        print()
        print(due_summary(statuses, quarter, now, left_out))
    if overdue:
        names = ", ".join(
            f"{s.requirement.scenario} (window closed {last_day(s.window_end)})" for s in overdue
        )
        _warn(f"{len(overdue)} required drill{'s' * (len(overdue) > 1)} overdue: {names}")
        return EXIT_MISSED
    return EXIT_OK


def _warn(message: str) -> None:
    print(f"drills: {message}", file=sys.stderr)


def _parse_now(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise DrillsError(
            f"--now {text!r} is not an ISO 8601 time: write e.g. 2026-12-01T00:00:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _parse_quarter(text: str) -> Quarter:
    try:
        quarter = Quarter.parse(text)
        _ = (quarter.start, quarter.end)  # years that datetime cannot represent fail here
    except ValueError as exc:
        raise DrillsError(f"--quarter: {exc}") from None
    return quarter


def _load_schedule(path: Path) -> Schedule:
    from drills.schedule import load_schedule

    try:
        return load_schedule(path)
    except UnicodeDecodeError:  # load_schedule reads text without catching this
        raise ScenarioError([Problem(str(path), None, "", "not UTF-8 text")]) from None


# --- drills schedule ----------------------------------------------------------------------


def run_schedule(args: argparse.Namespace) -> int:
    from drills.schedule.entries import Pod, crontab, kubernetes, refuse_line_breaks, systemd

    schedule = _load_schedule(args.schedule)
    command = _command(args.drills_command)
    workdir: Path | None = args.workdir
    refuse_line_breaks(schedule, command, workdir)
    source = str(args.schedule)
    if args.format == "kubernetes":
        where = str(workdir) if workdir is not None else None
        pod = Pod(args.image, where, args.store_secret, args.service_account, args.state_claim)
        print(kubernetes(schedule, command, pod, source), end="")
        return EXIT_OK
    local = (workdir or Path.cwd()).absolute()
    _warn_local(schedule, command, local, args.format)
    if args.format == "cron":
        print(crontab(schedule, command, str(local), source), end="")
    else:
        print(systemd(schedule, command, str(local), source), end="")
    return EXIT_OK


def _warn_local(schedule: Schedule, command: list[str], local: Path, scheduler: str) -> None:
    """What may keep the entries from working on this machine."""
    if not Path(command[0]).is_absolute():
        _warn(
            f"warning: {command[0]!r} is looked up in {scheduler}'s own PATH, which may not "
            "have it: consider --drills-command /path/to/drills"
        )
    for requirement in schedule.required:
        # Only worth saying on the machine the entries are for (where WORKDIR exists).
        if local.is_dir() and not (local / requirement.path).is_file():
            _warn(f"warning: {requirement.scenario}: no scenario file {local / requirement.path}")


def _command(text: str) -> list[str]:
    try:
        command = shlex.split(text)
    except ValueError as exc:  # unbalanced quotes
        raise DrillsError(f"--drills-command {text!r}: {exc}") from None
    if not command:
        raise DrillsError("--drills-command is empty")
    return command
