"""The exporter: every metric computed from the records directory on each scrape, served over
HTTP. The schedule is read at start, and again only when its file changes (a scrape does not
parse YAML)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics_core import Metric

from drills.errors import DrillsError, RecordError
from drills.metrics.samples import Families, end_of, run_samples, success_sample
from drills.quarters import Quarter
from drills.records import Run, SigningKey, read_runs
from drills.schedule import Schedule, State, load_schedule, status

log = logging.getLogger("drills.metrics")


class RunSource(Protocol):
    """Where runs come from in place of the reports directory (a store)."""

    def __call__(self, left_out: list[str]) -> tuple[list[Run], list[RecordError]]:
        """The runs that pass verification, `left_out` given a line for each that does not,
        and the records that are not valid at all."""

    def head(self) -> int:
        """The sequence number of the newest record checked (the store's chain)."""


class ScheduleFile:
    """A schedule file, parsed when first asked for and again only once it has changed (its
    modification time, size or inode); an invalid one is the same DrillsError until then."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._schedule: Schedule | None = None
        self._error: str = ""

    def get(self) -> Schedule:
        try:
            info = self.path.stat()
        except OSError as exc:
            raise DrillsError(f"{self.path}: cannot read: {exc.strerror}") from exc
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._schedule, self._error = load_schedule(self.path), ""
                except DrillsError as exc:
                    self._schedule, self._error = None, str(exc)
            if self._schedule is None:
                raise DrillsError(self._error)
            return self._schedule


class RecordsCollector:
    """Computes every metric from the run records (and the schedule, read when it changes)
    on each scrape. Records are verified with `key`, loaded once by whoever starts the
    exporter (None: no key, signatures are not checked)."""

    def __init__(
        self,
        reports_dir: Path,
        schedule_path: Path | None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        key: SigningKey | None = None,
        source: RunSource | None = None,
    ) -> None:
        self.reports_dir = reports_dir
        self.source = source
        self.key = key
        self.schedule_path = schedule_path
        self.schedule = ScheduleFile(schedule_path) if schedule_path is not None else None
        self._now = now
        self._lock = threading.Lock()
        self._errors_total = 0
        self._reported: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        began = time.monotonic()
        now = self._now()
        out = Families()
        left_out: list[str] = []  # records failing verification: reported, not exported
        if self.source is None:
            runs, problems = read_runs(self.reports_dir, left_out, self.key)  # not fatal either
        else:
            runs, problems = self.source(left_out)
        errors = [str(problem) for problem in problems] + left_out
        latest: dict[str, Run] = {}
        last_success: dict[str, float] = {}
        for run in runs:
            latest[run.scenario] = run
            end = end_of(run.record)
            if run.passed and run.started <= now and end is not None:
                last_success[run.scenario] = max(end, last_success.get(run.scenario, end))
        for _, run in sorted(latest.items()):
            try:
                out.extend(run_samples(run.record))
            except (DrillsError, TypeError, ValueError, AttributeError) as exc:
                errors.append(f"{run.path}: cannot export: {exc}")
        out.extend(success_sample(s, when) for s, when in sorted(last_success.items()))
        errors.extend(self._schedule(out, runs, now, last_success))
        out.add("drills_records", float(len(runs)))
        out.add("drills_records_left_out", float(len(left_out)))
        head = _verified_head(runs) if self.source is None else self.source.head()
        out.add("drills_chain_head_sequence", float(head))
        with self._lock:
            self._errors_total += len(errors)
            for line in errors:
                if line not in self._reported:
                    log.warning("%s", line)
            self._reported = set(errors)
            out.add("drills_exporter_errors_total", float(self._errors_total))
        out.add("drills_exporter_scrape_error", 1.0 if errors else 0.0)
        out.add("drills_exporter_scrape_duration_seconds", time.monotonic() - began)
        yield from out.families()

    def _schedule(
        self, out: Families, runs: list[Run], now: datetime, last_success: dict[str, float]
    ) -> list[str]:
        quarter = Quarter.of(now)
        out.add("drills_quarter_start_timestamp_seconds", quarter.start.timestamp())
        out.add("drills_quarter_end_timestamp_seconds", quarter.end.timestamp())
        counts: dict[str, int] = {r.scenario: 0 for r in runs}
        for run in runs:
            if quarter.contains(run.started):
                counts[run.scenario] += 1
        statuses = []
        if self.schedule is not None:
            try:
                schedule = self.schedule.get()
            except DrillsError as exc:
                return [f"{self.schedule_path}: invalid schedule: {str(exc).splitlines()[0]}"]
            statuses = status(schedule, runs, quarter, now)
        for item in statuses:
            scenario = item.requirement.scenario
            counts.setdefault(scenario, 0)
            labels = {"scenario": scenario}
            out.add("drills_required", 1.0, labels)
            for state in State:
                value = 1.0 if item.state is state else 0.0
                out.add("drills_requirement_state", value, {**labels, "state": state.value})
            deadline = item.window_end.timestamp()
            out.add("drills_requirement_deadline_timestamp_seconds", deadline, labels)
            if scenario in last_success:
                since = max(0.0, now.timestamp() - last_success[scenario])
                out.add("drills_seconds_since_last_success", since, labels)
        if statuses:
            done = sum(item.state is State.DONE for item in statuses)
            out.add("drills_coverage_ratio", done / len(statuses))
        for scenario, count in sorted(counts.items()):
            out.add("drills_quarter_runs", float(count), {"scenario": scenario})
        return []


def _verified_head(runs: list[Run]) -> int:
    """The sequence number of the newest record that passes verification (0: none)."""
    return max((run.record.chain.seq for run in runs if run.record.chain), default=0)


@dataclass
class Exporter:
    """A running exporter; `stop` shuts it down."""

    server: WSGIServer
    thread: threading.Thread
    host: str

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_exporter(
    reports_dir: Path,
    schedule_path: Path | None,
    host: str = "127.0.0.1",
    port: int = 0,
    key: SigningKey | None = None,
    source: RunSource | None = None,
) -> Exporter:
    """Serve /metrics on HOST:PORT (0: any free port) in a daemon thread, verifying records
    with `key` (loaded by the caller, once)."""
    collector = RecordsCollector(reports_dir, schedule_path, key=key, source=source)
    if collector.schedule is not None:
        collector.schedule.get()  # fail now on an invalid schedule, not at every scrape
    registry = CollectorRegistry()
    registry.register(collector)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise DrillsError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
    return Exporter(server, thread, host)


def serve(
    reports_dir: Path,
    schedule_path: Path | None,
    host: str,
    port: int,
    key: SigningKey | None = None,
    source: tuple[str, RunSource] | None = None,
) -> None:
    """Run the exporter until SIGINT (Ctrl-C) or SIGTERM."""
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    exporter = start_exporter(
        reports_dir, schedule_path, host, port, key, source[1] if source else None
    )
    previous = signal.signal(signal.SIGTERM, on_term)
    if source is None and not reports_dir.is_dir():
        log.warning("%s: no such directory yet: no run records to export", reports_dir)
    schedule = f", schedule {schedule_path}" if schedule_path else ", no schedule"
    signed = f"signing key {key.key_id}" if key else "no signing key: signatures not checked"
    print(
        f"drills exporter on {exporter.url} (records {source[0] if source else reports_dir}"
        f"{schedule}, {signed}); "
        "Ctrl-C stops",
        flush=True,
    )
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        exporter.stop()
        signal.signal(signal.SIGTERM, previous)
