"""Prometheus metrics of drill runs, from their run records (docs/records.md).

Three ways out, one set of metric definitions (`SPECS`, documented in docs/metrics.md):

- `push`: a per-run `CollectorRegistry` pushed to a Pushgateway after each drill (Prometheus'
  advice for batch jobs), grouping key `job="drills", scenario=<name>`;
- `write_textfile`: the same metrics for node_exporter's textfile collector, written atomically;
- `serve`: an exporter computing everything from the records directory on each scrape, plus
  the rehearsal schedule's state for the current quarter.

Rules: a measurement that is `null` in the record is not exported (no fake zeros); one-hot
metrics (`drills_verdict`, `drills_requirement_state`) carry every state with 0 or 1, so a
verdict never sticks at its old value; `drills_objective_met` is absent when the objective's
verdict is `unknown`. The Pushgateway replaces a whole group on each push, so the time of the
last success lives in a group of its own, `job="drills", scenario=<name>,
group="last_success"`, pushed only when it is known: a failing run does not erase it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
import urllib.error
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Literal
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, generate_latest, push_to_gateway
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from drills.checker import Overall, Verdict
from drills.errors import EXIT_OK, DrillsError
from drills.quarters import Quarter, parse_time
from drills.records import Run, RunRecord, load_record, load_runs, read_runs, write_atomically
from drills.records.model import Measurements, ObjectivesRecord
from drills.schedule import State, load_schedule, status

log = logging.getLogger("drills.metrics")

JOB = "drills"
SUCCESS_GROUP = "last_success"
PUSHGATEWAY_ENV = "DRILLS_PUSHGATEWAY"
PUSH_TIMEOUT_S = 10.0

VERDICTS = tuple(Overall)
OBJECTIVES = ("rto", "rpo", "availability", "split_brain")


@dataclass(frozen=True)
class Spec:
    name: str
    kind: Literal["gauge", "counter"]
    labels: tuple[str, ...]
    help: str
    source: Literal["run", "exporter"] = "run"


_S = ("scenario",)

SPECS: tuple[Spec, ...] = (
    # One run (registry_for, push, textfile; the exporter gives the latest run per scenario).
    Spec("drills_verdict", "gauge", ("scenario", "verdict"), "Verdict of the run, one-hot."),
    Spec(
        "drills_objective_met",
        "gauge",
        ("scenario", "objective"),
        "1 objective met, 0 missed; absent when unknown.",
    ),
    Spec("drills_rto_seconds", "gauge", _S, "Measured recovery time (RTO)."),
    Spec("drills_rpo_seconds", "gauge", _S, "Measured data-loss window (RPO)."),
    Spec("drills_downtime_seconds", "gauge", _S, "Service probe downtime, upper bound."),
    Spec("drills_lost_writes", "gauge", _S, "Acknowledged writes missing after recovery."),
    Spec(
        "drills_split_brain_writes",
        "gauge",
        _S,
        "Writes two databases acknowledged at once (0: none); absent when not judged.",
    ),
    Spec("drills_availability_ratio", "gauge", _S, "Availability over the drill window."),
    Spec("drills_error_budget_seconds", "gauge", _S, "Quarterly error budget of the objective."),
    Spec(
        "drills_error_budget_used_ratio",
        "gauge",
        _S,
        "Downtime of the run as a share of the quarterly error budget.",
    ),
    Spec("drills_objective_rto_seconds", "gauge", _S, "RTO objective."),
    Spec("drills_objective_rpo_seconds", "gauge", _S, "RPO objective."),
    Spec("drills_objective_availability_ratio", "gauge", _S, "Availability objective."),
    Spec(
        "drills_probe_interval_seconds",
        "gauge",
        _S,
        "Service probe interval: the resolution of RTO and downtime.",
    ),
    Spec(
        "drills_write_interval_seconds",
        "gauge",
        _S,
        "Write probe interval: the resolution of RPO.",
    ),
    Spec("drills_run_start_timestamp_seconds", "gauge", _S, "Start of the run, Unix time."),
    Spec("drills_run_end_timestamp_seconds", "gauge", _S, "End of the run, Unix time."),
    Spec(
        "drills_run_info",
        "gauge",
        ("scenario", "run_id", "drills_version"),
        "The run record the other metrics come from; always 1.",
    ),
    Spec(
        "drills_last_success_timestamp_seconds",
        "gauge",
        _S,
        "End of the latest passing run, Unix time; absent if none is known.",
    ),
    # The exporter only: the records directory and the rehearsal schedule.
    Spec("drills_required", "gauge", _S, "1 for each scenario the schedule requires.", "exporter"),
    Spec(
        "drills_requirement_state",
        "gauge",
        ("scenario", "state"),
        "State of the requirement this quarter (done, upcoming, due, overdue), one-hot.",
        "exporter",
    ),
    Spec(
        "drills_requirement_deadline_timestamp_seconds",
        "gauge",
        _S,
        "End of the requirement's window this quarter, Unix time.",
        "exporter",
    ),
    Spec(
        "drills_coverage_ratio",
        "gauge",
        (),
        "Required drills done this quarter / required drills.",
        "exporter",
    ),
    Spec(
        "drills_quarter_runs",
        "gauge",
        _S,
        "Runs started this quarter, per scenario seen or required.",
        "exporter",
    ),
    Spec(
        "drills_quarter_start_timestamp_seconds",
        "gauge",
        (),
        "Start of the current quarter (UTC), Unix time.",
        "exporter",
    ),
    Spec(
        "drills_quarter_end_timestamp_seconds",
        "gauge",
        (),
        "End of the current quarter (UTC), Unix time.",
        "exporter",
    ),
    Spec(
        "drills_seconds_since_last_success",
        "gauge",
        _S,
        "Seconds since the latest passing run of a required drill ended; absent if none.",
        "exporter",
    ),
    Spec("drills_records", "gauge", (), "Run records read on this scrape.", "exporter"),
    Spec(
        "drills_exporter_errors_total",
        "counter",
        (),
        "Unreadable records or schedule, counted once per scrape that met them.",
        "exporter",
    ),
    Spec(
        "drills_exporter_scrape_error",
        "gauge",
        (),
        "1 if this scrape could not read a record or the schedule.",
        "exporter",
    ),
    Spec(
        "drills_exporter_scrape_duration_seconds",
        "gauge",
        (),
        "Time spent reading records and schedule for this scrape.",
        "exporter",
    ),
)
METRICS: dict[str, Spec] = {spec.name: spec for spec in SPECS}

# record figure -> metric, for `measurements` and `objectives`
_MEASUREMENTS: tuple[tuple[Callable[[Measurements], float | None], str], ...] = (
    (lambda m: m.rto_s, "drills_rto_seconds"),
    (lambda m: m.rpo_s, "drills_rpo_seconds"),
    (lambda m: m.downtime_s, "drills_downtime_seconds"),
    (lambda m: m.lost_writes, "drills_lost_writes"),
    (lambda m: m.availability, "drills_availability_ratio"),
    (lambda m: m.error_budget_s, "drills_error_budget_seconds"),
    (lambda m: m.error_budget_share, "drills_error_budget_used_ratio"),
    (lambda m: m.probe_interval_s, "drills_probe_interval_seconds"),
    (lambda m: m.write_interval_s, "drills_write_interval_seconds"),
)
_OBJECTIVES: tuple[tuple[Callable[[ObjectivesRecord], float], str], ...] = (
    (lambda o: o.rto_s, "drills_objective_rto_seconds"),
    (lambda o: o.rpo_s, "drills_objective_rpo_seconds"),
    (lambda o: o.availability, "drills_objective_availability_ratio"),
)

Sample = tuple[str, float, dict[str, str]]


class _Families:
    """Metric families filled sample by sample, yielded in `SPECS` order, empty ones left out."""

    def __init__(self) -> None:
        self._by_name: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}

    def add(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        spec = METRICS[name]
        family = self._by_name.get(name)
        if family is None:
            if spec.kind == "counter":
                family = CounterMetricFamily(name, spec.help, labels=spec.labels)
            else:
                family = GaugeMetricFamily(name, spec.help, labels=spec.labels)
            self._by_name[name] = family
        given = labels or {}
        family.add_metric([given[label] for label in spec.labels], value)

    def extend(self, samples: Iterable[Sample]) -> None:
        for name, value, labels in samples:
            self.add(name, value, labels)

    def families(self) -> list[Metric]:
        return [self._by_name[s.name] for s in SPECS if s.name in self._by_name]


class _Fixed:
    """A collector of families computed once (a per-run registry)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _registry(samples: Iterable[Sample]) -> CollectorRegistry:
    families = _Families()
    families.extend(samples)
    registry = CollectorRegistry()
    registry.register(_Fixed(families.families()))
    return registry


def _timestamp(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_time(value).timestamp()
    except ValueError:
        return None


def end_of(record: RunRecord) -> float | None:
    """When the run ended (`finished_at`, else `started_at`), Unix time."""
    return _timestamp(record.finished_at) or _timestamp(record.started_at)


def run_samples(record: RunRecord) -> list[Sample]:
    """Every per-run sample of `record` except the last success."""
    scenario = record.scenario.name
    only = {"scenario": scenario}
    samples: list[Sample] = []
    for candidate in VERDICTS:
        hot = 1.0 if record.verdict is candidate else 0.0
        samples.append(("drills_verdict", hot, {"scenario": scenario, "verdict": candidate.value}))
    for objective in OBJECTIVES:
        judged = record.verdicts.get(objective)
        if judged is not None and judged.verdict is not Verdict.UNKNOWN:
            met = 1.0 if judged.verdict is Verdict.MET else 0.0
            labels = {"scenario": scenario, "objective": objective}
            samples.append(("drills_objective_met", met, labels))
    for measured, name in _MEASUREMENTS:
        value = measured(record.measurements)
        if value is not None:
            samples.append((name, float(value), only))
    for objective_of, name in _OBJECTIVES:
        samples.append((name, float(objective_of(record.objectives)), only))
    split = record.verdicts.get("split_brain")
    if split is not None and split.measured is not None:
        samples.append(("drills_split_brain_writes", float(split.measured), only))
    for stamp, name in (
        (_timestamp(record.started_at), "drills_run_start_timestamp_seconds"),
        (_timestamp(record.finished_at), "drills_run_end_timestamp_seconds"),
    ):
        if stamp is not None:
            samples.append((name, stamp, only))
    info = {
        "scenario": scenario,
        "run_id": record.run_id,
        "drills_version": (record.host.drills_version if record.host else None) or "",
    }
    samples.append(("drills_run_info", 1.0, info))
    return samples


def _last_success(record: RunRecord, known: float | None) -> float | None:
    """The later of `known` and this run's end when it passed."""
    found = [known, end_of(record) if record.passed else None]
    times = [t for t in found if t is not None]
    return max(times) if times else None


def _success_sample(scenario: str, when: float) -> Sample:
    return ("drills_last_success_timestamp_seconds", when, {"scenario": scenario})


def registry_for(record: RunRecord, last_success: float | None = None) -> CollectorRegistry:
    """A registry holding the metrics of one run record.

    `drills_last_success_timestamp_seconds` is the end of this run when it passed, or
    `last_success` (the latest passing run known from elsewhere, e.g. the records directory)
    when that is later; absent when neither is known.
    """
    samples = run_samples(record)
    when = _last_success(record, last_success)
    if when is not None:
        samples.append(_success_sample(record.scenario.name, when))
    return _registry(samples)


def last_success_in(directory: Path, scenario: str) -> float | None:
    """End of the latest passing run of `scenario` among the readable records of `directory`."""
    runs, _ = read_runs(directory)
    ends = [end_of(r.record) for r in runs if r.scenario == scenario and r.passed]
    found = [t for t in ends if t is not None]
    return max(found) if found else None


def _push_error(url: str, exc: Exception) -> DrillsError:
    if isinstance(exc, urllib.error.HTTPError):
        body = exc.read().decode("utf-8", "replace").strip().splitlines()
        reason = f"HTTP {exc.code} {exc.reason}" + (f": {body[0]}" if body else "")
    elif isinstance(exc, urllib.error.URLError):
        reason = str(exc.reason)
    else:
        reason = str(exc) or type(exc).__name__
    return DrillsError(f"cannot push metrics to {url}: {' '.join(reason.split())}")


def push(record: RunRecord, url: str, last_success: float | None = None) -> str:
    """Push one run's metrics to the Pushgateway at `url`; return a line for the user.

    Group `job="drills", scenario=<name>` gets every metric of `registry_for` except the last
    success, replacing the previous run's; group `job="drills", scenario=<name>,
    group="last_success"` gets `drills_last_success_timestamp_seconds`, pushed only when this
    run passed (or `last_success` is given), so a failing run leaves the previous one's.
    """
    scenario = record.scenario.name
    scheme, sep, _ = url.partition("://")
    if sep and scheme.lower() not in ("http", "https"):
        raise DrillsError(f"cannot push metrics to {url}: a Pushgateway URL is http or https")
    pushed = [f"job={JOB} scenario={scenario}"]
    try:
        push_to_gateway(
            url,
            job=JOB,
            registry=_registry(run_samples(record)),
            grouping_key={"scenario": scenario},
            timeout=PUSH_TIMEOUT_S,
        )
        when = _last_success(record, last_success)
        if when is not None:
            push_to_gateway(
                url,
                job=JOB,
                registry=_registry([_success_sample(scenario, when)]),
                grouping_key={"scenario": scenario, "group": SUCCESS_GROUP},
                timeout=PUSH_TIMEOUT_S,
            )
            pushed.append(f"group={SUCCESS_GROUP}")
    except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
        raise _push_error(url, exc) from exc
    return f"metrics of {record.run_id} pushed to {url} ({', '.join(pushed)})"


def write_textfile(record: RunRecord, path: Path | str, last_success: float | None = None) -> None:
    """Write one run's metrics for node_exporter's textfile collector, atomically.

    Temp file in the same directory, fsync, rename (`records.write_atomically`):
    `prometheus_client.write_to_textfile` renames but does not fsync.
    """
    path = Path(path)
    if path.suffix != ".prom":
        raise DrillsError(f"{path}: node_exporter's textfile collector reads only *.prom files")
    text = generate_latest(registry_for(record, last_success)).decode("utf-8")
    try:
        write_atomically(path, text)
    except OSError as exc:
        raise DrillsError(f"cannot write {path}: {exc.strerror or exc}") from exc


def after_drill(record: RunRecord, pushgateway: str | None = None) -> str | None:
    """Called by the runner after each drill: push when a Pushgateway is configured
    (`pushgateway`, else the DRILLS_PUSHGATEWAY environment variable). Returns a line for the
    user, or None when there is nowhere to push; raises DrillsError when the push fails."""
    url = pushgateway or os.environ.get(PUSHGATEWAY_ENV, "").strip() or None
    if url is None:
        return None
    return push(record, url)


# --- the exporter ---------------------------------------------------------------------------


class RecordsCollector:
    """Computes every metric from the run records and the schedule on each scrape."""

    def __init__(
        self,
        reports_dir: Path,
        schedule_path: Path | None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.reports_dir = reports_dir
        self.schedule_path = schedule_path
        self._now = now
        self._lock = threading.Lock()
        self._errors_total = 0
        self._reported: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        began = time.monotonic()
        now = self._now()
        out = _Families()
        runs, problems = read_runs(self.reports_dir)  # a broken record is reported, not fatal
        errors = [str(problem) for problem in problems]
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
        out.extend(_success_sample(s, when) for s, when in sorted(last_success.items()))
        errors.extend(self._schedule(out, runs, now, last_success))
        out.add("drills_records", float(len(runs)))
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
        self, out: _Families, runs: list[Run], now: datetime, last_success: dict[str, float]
    ) -> list[str]:
        quarter = Quarter.of(now)
        out.add("drills_quarter_start_timestamp_seconds", quarter.start.timestamp())
        out.add("drills_quarter_end_timestamp_seconds", quarter.end.timestamp())
        counts: dict[str, int] = {r.scenario: 0 for r in runs}
        for run in runs:
            if quarter.contains(run.started):
                counts[run.scenario] += 1
        statuses = []
        if self.schedule_path is not None:
            try:
                schedule = load_schedule(self.schedule_path)
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
    reports_dir: Path, schedule_path: Path | None, host: str = "127.0.0.1", port: int = 0
) -> Exporter:
    """Serve /metrics on HOST:PORT (0: any free port) in a daemon thread."""
    if schedule_path is not None:
        load_schedule(schedule_path)  # fail now on an invalid schedule, not at every scrape
    registry = CollectorRegistry()
    registry.register(RecordsCollector(reports_dir, schedule_path))
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise DrillsError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
    return Exporter(server, thread, host)


def serve(reports_dir: Path, schedule_path: Path | None, host: str, port: int) -> None:
    """Run the exporter until SIGINT (Ctrl-C) or SIGTERM."""
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    exporter = start_exporter(reports_dir, schedule_path, host, port)
    previous = signal.signal(signal.SIGTERM, on_term)
    if not reports_dir.is_dir():
        log.warning("%s: no such directory yet: no run records to export", reports_dir)
    schedule = f", schedule {schedule_path}" if schedule_path else ", no schedule"
    print(
        f"drills exporter on {exporter.url} (records {reports_dir}{schedule}); Ctrl-C stops",
        flush=True,
    )
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        exporter.stop()
        signal.signal(signal.SIGTERM, previous)


# --- command line ---------------------------------------------------------------------------


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `drills metrics` and `drills exporter`."""
    metrics = sub.add_parser(
        "metrics",
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
    metrics.add_argument(
        "--reports-dir",
        type=Path,
        default=Path("reports/runs"),
        help="run records (default: reports/runs)",
    )

    exporter = sub.add_parser(
        "exporter",
        help="serve Prometheus metrics computed from the run records until Ctrl-C",
        description=(
            "Serve /metrics, computed on each scrape from the run records (latest run per "
            "scenario) and the schedule (state of each required drill this quarter, coverage, "
            "time since the last success). Metrics: docs/metrics.md."
        ),
    )
    exporter.add_argument("--port", type=int, required=True, help="port to listen on")
    exporter.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    exporter.add_argument(
        "--reports-dir",
        type=Path,
        default=Path("reports/runs"),
        help="run records (default: reports/runs)",
    )
    exporter.add_argument(
        "--schedule",
        type=Path,
        default=Path("scenarios/schedule.yaml"),
        help="required drills (default: scenarios/schedule.yaml; skipped if missing)",
    )


def run_metrics(args: argparse.Namespace) -> int:
    if args.record is not None:
        record = load_record(args.record)
        directory = args.record.parent
    else:
        runs = load_runs(args.reports_dir)
        if not runs:
            raise DrillsError(f"no run records in {args.reports_dir}")
        record = runs[-1].record
        directory = args.reports_dir
    known = last_success_in(directory, record.scenario.name)
    if args.textfile is not None:
        write_textfile(record, args.textfile, known)
        print(f"{args.textfile}: metrics of {record.run_id}")
    else:
        print(push(record, args.pushgateway, known))
    return EXIT_OK


def run_exporter(args: argparse.Namespace) -> int:
    logging.basicConfig(format="drills exporter: %(message)s", level=logging.INFO)
    schedule: Path | None = args.schedule
    if schedule is not None and not schedule.exists():
        log.warning("%s: no such file: no schedule metrics", schedule)
        schedule = None
    serve(args.reports_dir, schedule, args.host, args.port)
    return EXIT_OK
