"""What the command modules share: the exit-status epilog, how a command is registered with its
handler, and the options several commands take (declared here once).

The parser is built on every start: command modules import what loads pydantic, YAML,
tabulate or prometheus_client inside their handlers, not at the top.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

# argparse's subparsers class is generic only to type checkers.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler = Callable[[argparse.Namespace], int]

REPORTS_DIR = Path("reports/runs")
SCHEDULE = Path("scenarios/schedule.yaml")
RECORDS_HELP = f"run records (default: {REPORTS_DIR})"

EPILOG = """\
exit status:
  0    every objective met
  1    an objective missed (RTO, RPO or availability)
  2    the drill could not run or could not be judged: invalid scenario, lab failure,
       failing step, an objective that could not be measured, a history or record that
       could not be written (a full disk), an internal error
  3    aborted: a stop condition (abort_if, --max-downtime) fired; everything reverted
  130  interrupted by SIGINT, SIGTERM or SIGHUP (faults reverted and lab removed first)

examples:
  drills validate scenarios/*.yaml
  drills run scenarios/db-failover.yaml
  drills run scenarios/db-failover.yaml --keep-lab --reports-dir reports/inspect
  drills check reports/runs/20261123T201500Z-db-failover.json
  drills report --quarter 2026-Q4
  drills due                # exit status 1 when a required drill is overdue
  drills schedule --cron
  drills run scenarios/db-failover.yaml --pushgateway http://127.0.0.1:9091
  drills metrics --textfile /var/lib/node_exporter/drills.prom
  drills exporter --port 9469
"""


def add_command(
    sub: Subparsers, name: str, handler: Handler, **options: Any
) -> argparse.ArgumentParser:
    """Add subcommand `name`; `drills.cli.main` calls `handler(args)` when it is chosen."""
    parser = sub.add_parser(name, **options)
    parser.set_defaults(handler=handler)
    return parser


def wrap(text: str) -> str:
    """A description filled to the terminal width argparse assumes, for raw formatters."""
    return textwrap.fill(text, 78)


def add_reports_dir(parser: argparse.ArgumentParser, help: str | None = RECORDS_HELP) -> None:
    parser.add_argument("--reports-dir", type=Path, default=REPORTS_DIR, help=help)


def add_schedule(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--schedule", type=Path, default=SCHEDULE, help=help)


CONFIG_DEFAULT = "default: $DRILLS_CONFIG, ./drills.yaml, ~/.config/drills/drills.yaml"
KEY_CONFIG_HELP = (
    f"drills.yaml whose signing_key_file checks the records' signatures ({CONFIG_DEFAULT}; "
    "$DRILLS_SIGNING_KEY_FILE and $DRILLS_SIGNING_KEY come first)"
)


def add_config(
    parser: argparse.ArgumentParser,
    help: str = (
        f"drills.yaml: containers faults may touch, signing_key_file, limits ({CONFIG_DEFAULT})"
    ),
) -> None:
    parser.add_argument("--config", type=Path, metavar="PATH", default=None, help=help)


STORE_HELP = (
    "results store, postgresql://USER@HOST:PORT/DB, password never in it (default: "
    "$DRILLS_STORE, store.url in drills.yaml; the password from $DRILLS_STORE_PASSWORD_FILE, "
    "store.password_file or $PGPASSWORD)"
)


def add_store(parser: argparse.ArgumentParser, help: str = STORE_HELP) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--store", metavar="URL", default=None, help=help)
    where.add_argument(
        "--no-store",
        action="store_true",
        help="files only, even with $DRILLS_STORE or store.url set (--reports-dir is read)",
    )
