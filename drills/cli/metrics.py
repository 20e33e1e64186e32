"""`drills metrics` and `drills exporter`: Prometheus metrics of the run records."""

from __future__ import annotations

import argparse
import logging
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
from drills.errors import EXIT_OK, DrillsError

log = logging.getLogger("drills.metrics")


DEFAULT_EXPORTER_PORT = 9464


def add_parsers(sub: Subparsers) -> None:
    """Add `drills metrics` and `drills exporter`."""
    metrics = add_command(
        sub,
        "metrics",
        run_metrics,
        help="write a run's Prometheus metrics to a textfile, or push them to a Pushgateway",
        description=(
            "Export the metrics of RECORD (default: the latest record of --reports-dir) for "
            "node_exporter's textfile collector, or push them to a Pushgateway. The time of "
            "the last success is taken from the records directory. Metrics: docs/metrics.md."
        ),
    )
    metrics.add_argument("record", type=Path, nargs="?", help="run record (reports/runs/*.json)")
    where = metrics.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--textfile", type=Path, metavar="PATH", help="write PATH (*.prom), atomically"
    )
    where.add_argument(
        "--pushgateway", metavar="URL", help="push to URL, e.g. http://127.0.0.1:9091"
    )
    add_reports_dir(metrics)
    add_config(metrics, KEY_CONFIG_HELP)

    exporter = add_command(
        sub,
        "exporter",
        run_exporter,
        help="serve Prometheus metrics computed from the run records until Ctrl-C",
        description=(
            "Serve /metrics, computed on each scrape from the run records (latest run per "
            "scenario) and the schedule (state of each required drill this quarter, coverage, "
            "time since the last success). Metrics: docs/metrics.md."
        ),
    )
    exporter.add_argument(
        "--port", type=int, default=DEFAULT_EXPORTER_PORT, help="port to listen on (default: 9464)"
    )
    exporter.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    add_reports_dir(exporter)
    add_config(exporter, KEY_CONFIG_HELP + "; the key is read once, at start")
    add_schedule(exporter, "required drills (default: scenarios/schedule.yaml; skipped if missing)")
    add_store(exporter, STORE_HELP + ": the metrics are computed from the store's records")


def run_metrics(args: argparse.Namespace) -> int:
    from drills.metrics import last_success_in, push, write_textfile
    from drills.records import load_record, load_runs, reader_key

    key = reader_key(args.reports_dir if args.record is None else args.record.parent, args.config)
    if args.record is not None:
        record = load_record(args.record)
        directory = args.record.parent
    else:
        left_out: list[str] = []  # the newest record that passes verification
        runs = load_runs(args.reports_dir, left_out, key)
        for line in left_out:
            print(f"drills: {line}", file=sys.stderr)
        if not runs:
            raise DrillsError(f"no run records in {args.reports_dir}")
        record = runs[-1].record
        directory = args.reports_dir
    known = last_success_in(directory, record.scenario.name, key)
    if args.textfile is not None:
        write_textfile(record, args.textfile, known)
        print(f"{args.textfile}: metrics of {record.run_id}")
    else:
        print(push(record, args.pushgateway, known))
    return EXIT_OK


def run_exporter(args: argparse.Namespace) -> int:
    from drills.metrics import serve
    from drills.records import reader_key
    from drills.store.readers import store_in_effect
    from drills.store.runs import ExporterSource

    logging.basicConfig(format="drills exporter: %(message)s", level=logging.INFO)
    schedule: Path | None = args.schedule
    if schedule is not None and not schedule.exists():
        log.warning("%s: no such file: no schedule metrics", schedule)
        schedule = None
    key = reader_key(args.reports_dir, args.config)  # unreadable: one line, exit 2, not per scrape
    store = store_in_effect(args)
    source = None
    if store is not None:  # the whole chain checked once here; a scrape reads what is new
        found = ExporterSource(store, key)
        left_out: list[str] = []
        runs, problems = found(left_out)  # what fails is logged, left out and counted, not fatal
        for line in [*map(str, problems), *left_out]:
            log.warning("%s", line)
        log.info("%s: %d records checked", store.display, len(runs) + len(left_out))
        source = (store.display, found)
    serve(args.reports_dir, schedule, args.host, args.port, key, source)
    return EXIT_OK
