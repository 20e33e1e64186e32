"""Run records: one JSON file per drill plus its raw history, written atomically.

The keys written here are a contract: reports, metrics and other tools read them. Every figure
carries its unit in its name and comes from the checker, which comes from recorded samples.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import socket
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drills import __version__
from drills.checker import CheckConfig, CheckResult, Objectives, ProbeSummary
from drills.errors import RecordError
from drills.history import History

SCHEMA_VERSION = 1


def utc_iso(wall_ns: int) -> str:
    return (
        datetime.fromtimestamp(wall_ns / 1e9, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def utc_basic(wall_ns: int) -> str:
    """ISO 8601 basic format, for file names: 20261123T201500Z."""
    return datetime.fromtimestamp(wall_ns / 1e9, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def write_atomically(path: Path, text: str) -> None:
    """Temp file in the same directory, fsync, rename: readers see the old file or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a record is for readers
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _rel(history: History, ns: int | None) -> float | None:
    return None if ns is None else round((ns - history.clock.mono_ns) / 1e9, 6)


def _split_brain_record(history: History, result: CheckResult) -> dict[str, Any] | None:
    """None when the writes say nothing about database lineages."""
    verdict = next((r for r in result.results if r.name == "split_brain"), None)
    if verdict is None:
        return None
    brain = result.split_brain
    if brain is None:
        return {"detected": False}
    return {
        "detected": True,
        "start_s": _rel(history, brain.start_ns),
        "end_s": _rel(history, brain.end_ns),
        "window_s": round((brain.end_ns - brain.start_ns) / 1e9, 6),
        "conflicting_ids": brain.ids,
    }


def _probe_record(history: History, summary: ProbeSummary) -> dict[str, Any]:
    info = history.probe(summary.name)
    assert info is not None
    outages = []
    for outage in summary.outages:
        lower, upper = outage.bounds_s(info.stopped_ns)
        outages.append(
            {
                "start_s": _rel(history, outage.last_ok_ns),
                "first_fail_s": _rel(history, outage.first_fail_invoke_ns),
                "end_s": _rel(history, outage.end_ns),
                "downtime_lower_s": round(lower, 6),
                "downtime_s": round(upper, 6),
                "samples": outage.samples,
                "recovered": outage.end_ns is not None,
            }
        )
    return {
        "kind": summary.kind,
        "interval_s": summary.interval_s,
        "timeout_s": info.timeout_s,
        "slow_s": info.slow_s,
        "started_s": _rel(history, info.started_ns),
        "stopped_s": _rel(history, info.stopped_ns),
        "samples": summary.samples,
        "skipped": info.skipped,
        "crashed": summary.crashed,
        "ok": summary.ok,
        "fail": summary.fail,
        "unknown": summary.unknown,
        "slow": summary.slow,
        "served_by": summary.served_by,
        "latency_p50_ms": summary.latency_p50_ms,
        "latency_p99_ms": summary.latency_p99_ms,
        "latency_max_ms": summary.latency_max_ms,
        "downtime_s": round(summary.downtime_s, 6),
        "downtime_lower_s": round(summary.downtime_lower_s, 6),
        "recovered_s": _rel(history, summary.recovered_ns),
        "peaks": summary.peaks,
        "outages": outages,
    }


def _peak(result: CheckResult, key: str) -> float | None:
    found = [p.peaks[key] for p in result.probes.values() if key in p.peaks]
    return max(found) if found else None


def host_facts() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "drills_version": __version__,
    }


@dataclass
class RunInfo:
    run_id: str
    scenario_name: str
    scenario_file: str
    scenario_sha256: str
    description: str
    started_wall_ns: int
    finished_wall_ns: int
    phases_s: dict[str, float]
    lab: dict[str, Any]
    error: str | None
    targets: dict[str, Any] = field(default_factory=dict)  # containers acted on: ids, images


def build_record(
    info: RunInfo, history: History, config: CheckConfig, result: CheckResult, history_file: str
) -> dict[str, Any]:
    writes = result.writes
    service = result.probes.get(config.service_probe or "")
    write_summary = result.probes.get(config.write_probe or "")
    verdict = "error" if info.error else result.verdict.value
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": info.run_id,
        "scenario": {
            "name": info.scenario_name,
            "file": info.scenario_file,
            "sha256": info.scenario_sha256,
            "description": info.description,
        },
        "started_at": utc_iso(info.started_wall_ns),
        "finished_at": utc_iso(info.finished_wall_ns),
        "verdict": verdict,
        "error": info.error,
        "objectives": {
            "rto_s": config.objectives.rto_s,
            "rpo_s": config.objectives.rpo_s,
            "availability": config.objectives.availability,
        },
        "check": {
            "service_probe": config.service_probe,
            "write_probe": config.write_probe,
            "stable": config.stable,
        },
        "measurements": {
            "rto_s": result.rto_s,
            "rpo_s": writes.rpo_s if writes else None,
            "downtime_s": result.downtime_s,
            "downtime_lower_s": result.downtime_lower_s,
            "availability": result.availability,
            "error_budget_s": round(result.error_budget_s, 6),
            "error_budget_share": result.error_budget_share,
            "lost_writes": len(writes.lost) if writes else None,
            "writes_acked": writes.acked if writes else None,
            "writes_attempted": writes.attempted if writes else None,
            "writes_recovered": len(writes.recovered) if writes else None,
            "unexpected_writes": len(writes.unexpected) if writes else None,
            "duplicated_writes": len(writes.duplicated) if writes else None,
            "lost_write_ids": writes.lost if writes else None,
            "lost_ranges": [list(r) for r in writes.lost_ranges] if writes else None,
            "holes": max(0, len(writes.lost_ranges) - 1) if writes else None,
            "recovery_point_s": _rel(history, writes.recovery_point_ns) if writes else None,
            "probe_interval_s": service.interval_s if service else None,
            "write_interval_s": write_summary.interval_s if write_summary else None,
            "disruption_start_s": _rel(history, result.disruption_start_ns),
            "replication_lag_peak_bytes": _peak(result, "lag_bytes"),
            "replication_lag_peak_s": _peak(result, "lag_s"),
        },
        "split_brain": _split_brain_record(history, result),
        "disruptions": [
            {
                "step": d.step,
                "kind": d.kind,
                "at_s": _rel(history, d.start_ns),
                "downtime_s": round(d.downtime_s, 6),
                "downtime_lower_s": round(d.downtime_lower_s, 6),
                "outages": d.outages,
                "down_already": d.down_already,
                "recovered_after_s": None
                if d.recovered_ns is None
                else round(max(0, d.recovered_ns - d.start_ns) / 1e9, 6),
            }
            for d in result.disruptions
        ],
        "verdicts": {
            r.name: {
                "verdict": r.verdict.value,
                "objective": r.objective,
                "measured": r.measured,
                "reason": r.reason,
            }
            for r in result.results
        },
        "timeline": [
            {
                "index": s.index,
                "kind": s.kind,
                "description": s.description,
                "disruptive": s.disruptive,
                "start_s": _rel(history, s.start_ns),
                "end_s": _rel(history, s.end_ns),
                "at": utc_iso(history.clock.wall_ns_at(s.start_ns)),
                "ok": s.ok,
                "detail": s.detail,
            }
            for s in history.steps
        ],
        "probes": {name: _probe_record(history, s) for name, s in result.probes.items()},
        "events": [
            {
                "at_s": _rel(history, e.at_ns),
                "source": e.source,
                "subject": e.subject,
                "change": e.change,
            }
            for e in history.events
        ],
        "phases_s": {k: round(v, 3) for k, v in info.phases_s.items()},
        "lab": info.lab,
        "targets": info.targets,
        "host": host_facts(),
        "history": history_file,
    }


# -- evidence: a hash chain per reports directory ---------------------------------------------

CHAIN_LOCK = ".chain.lock"
CHAIN_HEAD = ".chain-head"  # "NAME SEQ" of the record chained last


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def self_digest(record: dict[str, Any]) -> str:
    """sha256 of the record's canonical JSON without its own `self_sha256`."""
    body = {k: v for k, v in record.items() if k != "self_sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_files(directory: Path) -> list[Path]:
    """Run records by name (their names start with the UTC start)."""
    return sorted(p for p in directory.glob("*.json") if not p.name.startswith("."))


def _sequence(path: Path) -> int:
    """A record's place in its chain (records chained before numbering count as 0)."""
    try:
        seq = json.loads(path.read_text(encoding="utf-8")).get("chain", {}).get("seq")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return 0
    return seq if isinstance(seq, int) else 0


def chained_files(directory: Path) -> list[Path]:
    """Run records in the order they were written, which is the chain's order: two drills
    that overlap in time finish (and are chained) in the other order from their start."""
    return sorted(record_files(directory), key=lambda p: (_sequence(p), p.name))


def _head(directory: Path) -> tuple[Path | None, int]:
    """The last record chained, and its sequence number: the highest on disk, so that a crash
    between writing a record and updating `.chain-head` cannot fork the chain."""
    files = chained_files(directory)
    return (files[-1], _sequence(files[-1])) if files else (None, 0)


def _head_file(directory: Path) -> tuple[str, int] | None:
    try:
        name, seq = (directory / CHAIN_HEAD).read_text(encoding="utf-8").split()
        return name, int(seq)
    except (OSError, ValueError):
        return None


def write_chained(path: Path, record: dict[str, Any]) -> None:
    """Write `record` atomically as the next link of its directory's chain: it carries the
    sha256 of the previous record file and of its own history, and a digest of itself."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / CHAIN_LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two drills finishing at once must not fork it
        previous, seq = _head(path.parent)
        history = path.parent / str(record.get("history", ""))
        record["chain"] = {
            "seq": seq + 1,
            "previous": previous.name if previous else None,
            "previous_sha256": sha256_file(previous) if previous else None,
            "history_sha256": sha256_file(history) if history.is_file() else None,
        }
        record["self_sha256"] = self_digest(record)
        write_atomically(path, record_text(record))
        (path.parent / f"{CHAIN_HEAD}.tmp").write_text(f"{path.name} {seq + 1}\n")
        os.replace(path.parent / f"{CHAIN_HEAD}.tmp", path.parent / CHAIN_HEAD)


def verify_chain(directory: Path) -> tuple[int, list[str]]:
    """Check every record and every link; return how many records were checked and the
    problems found, the first broken link first."""
    problems: list[str] = []
    files = chained_files(directory)
    previous: Path | None = None
    for path in files:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{path}: unreadable: {exc}")
            previous = path
            continue
        chain = record.get("chain") if isinstance(record, dict) else None
        if not isinstance(chain, dict) or "self_sha256" not in record:
            problems.append(f"{path}: not chained (no chain or self_sha256)")
            previous = path
            continue
        if record["self_sha256"] != self_digest(record):
            problems.append(f"{path}: content changed after it was written (self_sha256)")
        expected = previous.name if previous else None
        if chain.get("previous") != expected:
            problems.append(
                f"{path}: broken link: it follows {chain.get('previous')!r}, "
                f"but the record before it is {expected!r} (a record removed or added?)"
            )
        elif previous is not None and chain.get("previous_sha256") != sha256_file(previous):
            problems.append(
                f"{path}: broken link: {previous.name} changed after {path.name} was written"
            )
        history = directory / str(record.get("history", ""))
        if chain.get("history_sha256") is not None:
            if not history.is_file():
                problems.append(f"{path}: its history {history.name} is missing")
            elif sha256_file(history) != chain["history_sha256"]:
                problems.append(f"{path}: its history {history.name} changed")
        previous = path
    head = _head_file(directory)
    if head is not None and files:
        name, seq = head
        last = files[-1]
        if not (directory / name).is_file():
            problems.append(
                f"{directory / name}: the newest record ({CHAIN_HEAD}, #{seq}) is missing "
                "(removed?)"
            )
        elif name != last.name and _sequence(last) <= seq:
            problems.append(f"{last}: {CHAIN_HEAD} says the newest record is {name}")
    return len(files), problems


def load_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from exc
    if not isinstance(record, dict) or record.get("schema_version") != SCHEMA_VERSION:
        raise RecordError(f"{path}: not a drills run record (schema_version {SCHEMA_VERSION})")
    return record


def check_config_of(record: dict[str, Any], path: Path) -> CheckConfig:
    try:
        objectives = record["objectives"]
        check = record["check"]
        return CheckConfig(
            objectives=Objectives(
                rto_s=float(objectives["rto_s"]),
                rpo_s=float(objectives["rpo_s"]),
                availability=float(objectives["availability"]),
            ),
            service_probe=check["service_probe"],
            write_probe=check["write_probe"],
            stable=int(check["stable"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"{path}: record lacks {exc}") from exc


def record_text(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=2, sort_keys=False) + "\n"
