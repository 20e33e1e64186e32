"""Command line: run, validate, check, ack, show, report, due, schedule, metrics, exporter, verify,
store, recover, list, proxy. One module per command group, each with `add_parsers(sub)`
registering its commands and their handlers; `main` dispatches to the handler and maps errors
to the exit status in one place.

Exit status: 0 every objective met; 1 an objective missed; 2 the drill could not run or could
not be judged (invalid scenario, lab failure, a failing step, an objective that could not be
measured, a full disk, a bug in drills); 3 aborted by a stop condition; 130 interrupted (SIGINT
or SIGTERM), after cleaning up.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from drills import __version__
from drills.cli import (
    ack,
    drill,
    kinds,
    metrics,
    proxy,
    recover,
    report,
    schedule,
    show,
    store,
    verify,
)
from drills.cli.common import EPILOG, Handler
from drills.errors import EXIT_ERROR, EXIT_INTERRUPTED, DrillsError, exit_code, report_error

# In the order `drills --help` lists their commands.
GROUPS = (drill, ack, show, report, schedule, metrics, verify, store, recover, kinds, proxy)


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
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_ERROR
    try:
        return handler(args)
    except DrillsError as exc:
        return report_error(exc)
    except KeyboardInterrupt:
        print("drills: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug in drills: 2 (not done), never 1 (an objective missed)
        traceback.print_exc()
        print(f"drills: internal error: {exc!r}", file=sys.stderr)
        return exit_code(exc)
