"""One run's metrics out: pushed to a Pushgateway, or written for node_exporter's textfile
collector."""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

from prometheus_client import generate_latest, push_to_gateway

from drills.errors import DrillsError
from drills.metrics.samples import (
    head_samples,
    latest_success,
    registry_for,
    registry_of,
    run_samples,
    success_sample,
)
from drills.records import RunRecord, write_atomically

JOB = "drills"
SUCCESS_GROUP = "last_success"
PUSHGATEWAY_ENV = "DRILLS_PUSHGATEWAY"
PUSH_TIMEOUT_S = 10.0


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
            registry=registry_of(run_samples(record) + head_samples(record)),
            grouping_key={"scenario": scenario},
            timeout=PUSH_TIMEOUT_S,
        )
        when = latest_success(record, last_success)
        if when is not None:
            push_to_gateway(
                url,
                job=JOB,
                registry=registry_of([success_sample(scenario, when)]),
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
