"""`drills due` and `drills schedule`: the required rehearsals of a quarter, and how to run them.

`drills due` reads the schedule (`scenarios/schedule.yaml`) and the run records, and says for
each required drill whether it is done, upcoming, due or overdue this quarter. `drills schedule`
prints, without installing anything, the cron, systemd or Kubernetes entries that start each
required drill on the first day of its window at 02:00 UTC.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drills.errors import (
    EXIT_MISSED,
    EXIT_OK,
    DrillsError,
    Problem,
    ScenarioError,
    report_error,
)
from drills.quarters import Quarter

if TYPE_CHECKING:
    from drills.records import Run
    from drills.schedule import Requirement, Schedule, Status

# `drills.cli` builds its parser on every start: what loads pydantic, YAML or tabulate is
# imported where it is used.

DEFAULT_SCHEDULE = Path("scenarios/schedule.yaml")
DEFAULT_REPORTS = Path("reports/runs")
HOUR_UTC = 2  # scheduled drills start at 02:00 UTC on the first day of their window

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


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `due` and `schedule` subcommands to the `drills` parser."""
    due = sub.add_parser(
        "due",
        help="which required drills are done, upcoming, due or overdue this quarter",
        description=_wrap(
            "For every drill the schedule requires this quarter (or --quarter): its state, its "
            "window, its runs in the window (how many, how many failed, whether it failed and "
            "was run again) and the last time it passed. Exit status 1 when one is overdue."
        ),
        epilog=DUE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _schedule_option(due)
    due.add_argument(
        "--reports-dir",
        type=Path,
        default=DEFAULT_REPORTS,
        help=f"run records (default: {DEFAULT_REPORTS})",
    )
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

    sched = sub.add_parser(
        "schedule",
        help="print cron, systemd or Kubernetes entries that run the required drills",
        description=_wrap(
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
    _schedule_option(sched)
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


def _wrap(text: str) -> str:
    return textwrap.fill(text, 78)


def _schedule_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schedule",
        type=Path,
        default=DEFAULT_SCHEDULE,
        help=f"the required drills (default: {DEFAULT_SCHEDULE})",
    )


# --- drills due ---------------------------------------------------------------------------


def run_due(args: argparse.Namespace) -> int:
    from drills.records import load_runs
    from drills.schedule import State, status

    try:
        now = _parse_now(args.now) if args.now else datetime.now(UTC)
        quarter = _parse_quarter(args.quarter) if args.quarter else Quarter.of(now)
        schedule = _load_schedule(args.schedule)
        if not args.reports_dir.is_dir():
            _warn(f"no run records: {args.reports_dir} is not a directory")
        statuses = status(schedule, load_runs(args.reports_dir), quarter, now)
    except DrillsError as exc:
        return report_error(exc)
    overdue = [s for s in statuses if s.state is State.OVERDUE]
    if args.json:
        print(json.dumps(due_json(statuses, quarter, now), indent=2))
    else:
        print(due_table(statuses, now))
        print()
        print(due_summary(statuses, quarter, now))
    if overdue:
        names = ", ".join(
            f"{s.requirement.scenario} (window closed {_last_day(s.window_end)})" for s in overdue
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


def _last_day(end: datetime) -> str:
    """The last day inside a window whose end is the first instant after it."""
    return f"{end - timedelta(days=1):%Y-%m-%d}"


def _window(s: Status) -> str:
    return f"{s.window_start:%Y-%m-%d} to {_last_day(s.window_end)}"


def _days(delta: timedelta) -> str:
    if delta.days < 1:
        return "less than a day"
    return f"{delta.days} day{'s' * (delta.days != 1)}"


def _note(s: Status, now: datetime) -> str:
    from drills.schedule import State

    notes = []
    if s.state is State.UPCOMING:
        notes.append(f"opens in {_days(s.window_start - now)}")
    elif s.state is State.DUE:
        notes.append(f"{_days(s.window_end - now)} left")
    elif s.state is State.OVERDUE:
        notes.append("window closed without a pass")
    if s.rerun_after_failure:
        notes.append(f"failed {s.failed_runs}x, run again and passed")
    elif s.failed_runs and s.state is not State.DONE:
        notes.append(f"failed {s.failed_runs}x, not passed yet")
    elif s.failed_runs:
        notes.append(f"failed {s.failed_runs}x after passing")
    return "; ".join(notes)


def _when(run: Run | None) -> str:
    return "never" if run is None else f"{run.started:%Y-%m-%d %H:%M}"


def due_table(statuses: list[Status], now: datetime) -> str:
    rows = [
        [
            s.requirement.scenario,
            _window(s),
            s.state.value,
            len(s.runs),
            s.failed_runs,
            _when(s.last_pass),
            _note(s, now),
        ]
        for s in statuses
    ]
    headers = ["required", "window", "state", "runs", "failed", "last passed (UTC)", "note"]
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="github")


def due_summary(statuses: list[Status], quarter: Quarter, now: datetime) -> str:
    from drills.schedule import State

    counts = Counter(s.state for s in statuses)
    parts = ", ".join(f"{counts[state]} {state.value}" for state in State)
    text = f"{quarter}, as of {now:%Y-%m-%d %H:%M} UTC: {len(statuses)} required, {parts}"
    overdue = [s.requirement.scenario for s in statuses if s.state is State.OVERDUE]
    return f"{text}; OVERDUE: {', '.join(overdue)}" if overdue else text


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _run_json(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.record.run_id,
        "started_at": _iso(run.started),
        "verdict": run.verdict.value,
        "record": str(run.path),
    }


def due_json(statuses: list[Status], quarter: Quarter, now: datetime) -> dict[str, Any]:
    from drills.schedule import State

    counts = Counter(s.state for s in statuses)
    return {
        "quarter": str(quarter),
        "now": _iso(now),
        "counts": {state.value: counts[state] for state in State},
        "overdue": [s.requirement.scenario for s in statuses if s.state is State.OVERDUE],
        "required": [
            {
                "scenario": s.requirement.scenario,
                "cadence": s.requirement.cadence,
                "month": s.requirement.month,
                "file": s.requirement.path,
                "state": s.state.value,
                "window_start": _iso(s.window_start),
                "window_end": _iso(s.window_end),  # the first instant after the window
                "runs": [_run_json(r) for r in s.runs],
                "run_count": len(s.runs),
                "failed_runs": s.failed_runs,
                "rerun_after_failure": s.rerun_after_failure,
                "last_pass": None if s.last_pass is None else _run_json(s.last_pass),
            }
            for s in statuses
        ],
    }


# --- drills schedule ----------------------------------------------------------------------


def run_schedule(args: argparse.Namespace) -> int:
    try:
        schedule = _load_schedule(args.schedule)
        command = _command(args.drills_command)
        workdir: Path | None = args.workdir
        texts = [*command, str(workdir or ""), *(r.path for r in schedule.required)]
        texts += [r.scenario for r in schedule.required]
        if any("\n" in t or "\r" in t for t in texts):
            raise DrillsError("a line break in a name, path or command cannot go into an entry")
    except DrillsError as exc:
        return report_error(exc)
    source = str(args.schedule)
    if args.format == "kubernetes":
        where = str(workdir) if workdir is not None else None
        print(kubernetes(schedule, command, args.image, where, source), end="")
        return EXIT_OK
    local = (workdir or Path.cwd()).absolute()
    if not Path(command[0]).is_absolute():
        _warn(
            f"warning: {command[0]!r} is looked up in {args.format}'s own PATH, which may not "
            "have it: consider --drills-command /path/to/drills"
        )
    for requirement in schedule.required:
        # Only worth saying on the machine the entries are for (where WORKDIR exists).
        if local.is_dir() and not (local / requirement.path).is_file():
            _warn(f"warning: {requirement.scenario}: no scenario file {local / requirement.path}")
    if args.format == "cron":
        print(crontab(schedule, command, str(local), source), end="")
    else:
        print(systemd(schedule, command, str(local), source), end="")
    return EXIT_OK


def _command(text: str) -> list[str]:
    try:
        command = shlex.split(text)
    except ValueError as exc:  # unbalanced quotes
        raise DrillsError(f"--drills-command {text!r}: {exc}") from None
    if not command:
        raise DrillsError("--drills-command is empty")
    return command


def months(requirement: Requirement) -> list[int]:
    """The months of the year in which the requirement's window opens."""
    first = requirement.month or 1
    return [first + 3 * i for i in range(4)]


def cron_schedule(requirement: Requirement) -> str:
    return f"0 {HOUR_UTC} 1 {','.join(str(m) for m in months(requirement))} *"


def on_calendar(requirement: Requirement) -> str:
    month_list = ",".join(f"{m:02d}" for m in months(requirement))
    return f"*-{month_list}-01 {HOUR_UTC:02d}:00:00 UTC"


def _describe(requirement: Requirement) -> str:
    names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    when = "/".join(names[m - 1] for m in months(requirement))
    window = (
        "any time in the quarter"
        if requirement.month is None
        else f"in month {requirement.month} of the quarter"
    )
    return f"{requirement.cadence}, {window}: 1 {when} {HOUR_UTC:02d}:00 UTC"


def unit_names(schedule: Schedule, kubernetes: bool = False) -> list[str]:
    """`drills-<scenario>` per requirement, made safe as a systemd unit name (or a Kubernetes
    object name: lowercase DNS-1123, at most 52 characters for a CronJob) and unique: a
    scenario required twice gets `-1`, `-2`."""
    bases = []
    for requirement in schedule.required:
        if kubernetes:
            safe = re.sub(r"[^a-z0-9]+", "-", requirement.scenario.lower()).strip("-")
            bases.append(f"drills-{safe or 'scenario'}"[:49].rstrip("-"))
        else:
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", requirement.scenario).strip("-")
            bases.append(f"drills-{safe or 'scenario'}")
    seen: Counter[str] = Counter()
    counts = Counter(bases)
    names = []
    for base in bases:
        seen[base] += 1
        names.append(f"{base}-{seen[base]}" if counts[base] > 1 else base)
    return names


def _argv(command: list[str], requirement: Requirement) -> list[str]:
    return [*command, "run", requirement.path, "--no-live"]


def crontab(schedule: Schedule, command: list[str], workdir: str, source: str) -> str:
    lines = [
        f"# drills: the required drills of {source} (generated by `drills schedule --cron`)",
        "# CRON_TZ makes cronie read the times as UTC; other crons use the system's time zone",
        "CRON_TZ=UTC",
    ]
    for requirement in schedule.required:
        shell = f"cd {shlex.quote(workdir)} && {shlex.join(_argv(command, requirement))}"
        lines.append(f"# {requirement.scenario}: {_describe(requirement)}")
        escaped = shell.replace("%", "\\%")  # cron turns an unescaped % into a newline
        lines.append(f"{cron_schedule(requirement)} {escaped}")
    return "\n".join(lines) + "\n"


def _systemd_escape(text: str) -> str:
    """Protect `%` specifiers and `$` variables in a unit file value."""
    return text.replace("%", "%%").replace("$", "$$")


def _systemd_word(word: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", word):
        return _systemd_escape(word)
    return '"' + _systemd_escape(word.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def systemd(schedule: Schedule, command: list[str], workdir: str, source: str) -> str:
    blocks = []
    for name, requirement in zip(unit_names(schedule), schedule.required, strict=True):
        scenario = _systemd_escape(requirement.scenario)
        exec_start = " ".join(_systemd_word(w) for w in _argv(command, requirement))
        blocks.append(
            f"# file: {name}.service\n"
            "[Unit]\n"
            f"Description=drills: required drill {scenario}\n"
            "\n"
            "[Service]\n"
            "Type=oneshot\n"
            f"WorkingDirectory={_systemd_escape(workdir)}\n"
            f"ExecStart={exec_start}\n"
        )
        blocks.append(
            f"# file: {name}.timer\n"
            "[Unit]\n"
            f"Description=drills: {scenario}, {_describe(requirement)}\n"
            "\n"
            "[Timer]\n"
            f"OnCalendar={on_calendar(requirement)}\n"
            "Persistent=true\n"
            f"Unit={name}.service\n"
            "\n"
            "[Install]\n"
            "WantedBy=timers.target\n"
        )
    header = (
        f"# drills: the required drills of {source} (generated by `drills schedule --systemd`)\n"
        "# Save each block under its `# file:` name in /etc/systemd/system, then\n"
        "# `systemctl daemon-reload` and `systemctl enable --now "
        + " ".join(f"{n}.timer" for n in unit_names(schedule))
        + "`\n"
    )
    return header + "\n" + "\n".join(blocks)


def cronjob(
    name: str, requirement: Requirement, command: list[str], image: str, workdir: str | None
) -> dict[str, Any]:
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", requirement.scenario)[:63].strip("-_.")
    container: dict[str, Any] = {
        "name": "drills",
        "image": image,
        "command": _argv(command, requirement),
    }
    if workdir is not None:
        container["workingDir"] = workdir
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": "drills", "drills/scenario": label},
        },
        "spec": {
            "schedule": cron_schedule(requirement),
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 0,  # a failed drill is evidence, not something to retry
                    "template": {
                        "metadata": {"labels": {"drills/scenario": label}},
                        "spec": {"restartPolicy": "Never", "containers": [container]},
                    },
                }
            },
        },
    }


def kubernetes(
    schedule: Schedule, command: list[str], image: str, workdir: str | None, source: str
) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        """Indents lists inside mappings, as Kubernetes manifests usually are."""

        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            super().increase_indent(flow, False)

    names = unit_names(schedule, kubernetes=True)
    documents = []
    for name, requirement in zip(names, schedule.required, strict=True):
        manifest = yaml.dump(
            cronjob(name, requirement, command, image, workdir), Dumper=Dumper, sort_keys=False
        )
        documents.append(f"# {requirement.scenario}: {_describe(requirement)}\n{manifest}")
    header = (
        f"# drills: the required drills of {source} (generated by `drills schedule --kubernetes`)"
        "\n# Run records are written inside the pod: mount a persistent volume on reports/.\n"
    )
    return header + "---\n".join(documents)
