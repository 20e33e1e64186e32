"""Probe capacity: how many samples per second drills measures faithfully on this machine.

For 1, 10, 30 and 100 postgres-read probes at 10, 20 and 100 ms against a PostgreSQL server
the bench started (the postgres-pair lab's site A, direct), the bench freezes the server itself:
SIGSTOP to the postmaster and every process under it, SIGCONT after 1 s, the true length taken
between those two calls by the bench, not by drills. It records samples/s, the harness's CPU per
sample, the worst lower-bound error against the truth, false outages (every outage beyond one
per probe), the share of samples the harness was late for, and whether the checker would call
the run overloaded. `--soak SECONDS` runs one load (30 probes at 10 ms) that long and reports RSS
growth and the longest gap between two samples of a probe.

Writes its section of docs/benchmarks.md. Run with `make bench` (or `python -m bench.capacity`).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import resource
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from bench.sections import replace_section
from drills.checker import summarize_probe
from drills.history import Clock, HistoryLog
from drills.labs.postgres_pair import PostgresPairConfig, PostgresPairLab
from drills.lateness import harness_lag, overload_error
from drills.openloop import ProbeRunner
from drills.proctree import descendants
from drills.signals import interruptible
from probes.postgres_read import PostgresReadConfig, PostgresReadProbe

ROOT = Path(__file__).resolve().parent.parent
PROBES = (1, 10, 30, 100)
INTERVALS_MS = (10, 20, 100)
FREEZE_S = 1.0
BEFORE_S, AFTER_S = 1.5, 2.0


@dataclass
class Row:
    probes: int
    interval_ms: int
    samples_per_s: float
    cpu_ms_per_sample: float
    worst_lower_error_ms: float | None  # None: some probe saw no outage at all
    false_outages: int
    late_share: float
    overloaded: bool

    @property
    def faithful(self) -> bool:
        bound = self.interval_ms + 10
        error = self.worst_lower_error_ms
        return (
            error is not None and abs(error) <= bound and not self.false_outages
        ) and not self.overloaded


def _freeze(pid: int, sig: signal.Signals) -> None:
    for target in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, sig)


def trial(dsn: str, postmaster: int, count: int, interval_ms: int) -> Row:
    log = HistoryLog(Clock.now())
    config = {"kind": "postgres-read", "dsn": dsn, "interval": f"{interval_ms}ms"}
    config |= {"timeout": "500ms", "slow": "50ms"}
    probes = [
        PostgresReadProbe(f"r{i}", PostgresReadConfig.model_validate(config), "capacity")
        for i in range(count)
    ]
    runners = [ProbeRunner(p, log, log.history.clock) for p in probes]
    for runner in runners:
        runner.start()
    cpu = time.process_time()
    try:
        time.sleep(BEFORE_S)
        _freeze(postmaster, signal.SIGSTOP)
        frozen = time.monotonic_ns()
        time.sleep(FREEZE_S)
        thawed = time.monotonic_ns()
        _freeze(postmaster, signal.SIGCONT)
        time.sleep(AFTER_S)
    finally:
        _freeze(postmaster, signal.SIGCONT)
        for runner in runners:
            runner.stop()
    return _row(log, count, interval_ms, (thawed - frozen) / 1e9, time.process_time() - cpu)


def _row(log: HistoryLog, count: int, interval_ms: int, truth: float, cpu: float) -> Row:
    history = log.history
    errors: list[float | None] = []
    false_outages = 0
    for info in history.probes:
        summary = summarize_probe(history, info, stable=3)
        lows = [o.bounds_s(info.stopped_ns)[0] for o in summary.outages]
        false_outages += max(0, len(lows) - 1)
        longest = max(lows, default=None)
        errors.append(None if longest is None else (longest - truth) * 1000)
    lag = harness_lag(history.ops, sum(p.skipped for p in history.probes))
    known = [abs(e) for e in errors if e is not None]
    return Row(
        probes=count,
        interval_ms=interval_ms,
        samples_per_s=count * 1000 / interval_ms,  # the load asked; late ones are counted
        cpu_ms_per_sample=cpu * 1000 / max(1, len(history.ops)),
        worst_lower_error_ms=None if None in errors else max(known),
        false_outages=false_outages,
        late_share=lag.late_share,
        overloaded=overload_error(lag) is not None,
    )


def soak(dsn: str, seconds: float) -> tuple[float, float]:
    """RSS growth (MB) and the longest gap between two samples of a probe (ms)."""
    log = HistoryLog(Clock.now())
    config = PostgresReadConfig.model_validate(
        {"kind": "postgres-read", "dsn": dsn, "interval": "10ms"}
    )
    runners = [
        ProbeRunner(PostgresReadProbe(f"r{i}", config, "soak"), log, log.history.clock)
        for i in range(30)
    ]
    for runner in runners:
        runner.start()
    time.sleep(min(60.0, seconds / 10))  # warm: pools, caches, the history's first growth
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    time.sleep(seconds)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss
    for runner in runners:
        runner.stop()
    gaps = []
    for info in log.history.probes:
        dues = [op.invoke_ns for op in log.history.ops_of(info.name)]
        gaps += [(b - a) / 1e6 for a, b in itertools.pairwise(dues)]
    return grown, max(gaps, default=0.0)


def _verdict(row: Row) -> str:
    if row.overloaded:
        return "error (overloaded)"
    return "faithful" if row.faithful else "NOT faithful"


def table(rows: list[Row]) -> str:
    body = [
        [
            r.probes,
            f"{r.interval_ms} ms",
            f"{r.samples_per_s:,.0f}",
            f"{r.cpu_ms_per_sample:.3f}",
            "no outage seen" if r.worst_lower_error_ms is None else f"{r.worst_lower_error_ms:.1f}",
            r.false_outages,
            f"{r.late_share:.1%}",
            "error (overloaded)"
            if r.overloaded
            else ("faithful" if r.faithful else "NOT faithful"),
        ]
        for r in rows
    ]
    headers = ["probes", "every", "samples/s", "CPU ms/sample", "worst lower error ms"]
    headers += ["false outages", "late", "verdict"]
    return tabulate(body, headers=headers, tablefmt="github")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--soak", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    lab = PostgresPairLab(
        # 100 probes x 4 connections, and each reconnects after the freeze.
        PostgresPairConfig.model_validate(
            {"kind": "postgres-pair", "settings": {"max_connections": 600}}
        ),
        lambda m: print(m, file=sys.stderr),
    )
    with interruptible():
        handle = lab.start()
        try:
            dsn = handle.variables["a.direct_dsn"]
            pid_file = lab.servers[0].datadir / "postmaster.pid"
            postmaster = int(pid_file.read_text().split()[0])
            if args.soak:
                grown, gap = soak(dsn, args.soak)
                print(f"soak {args.soak:.0f}s: RSS +{grown:.1f} MB, longest gap {gap:.1f} ms")
                return 0
            rows = []
            for count in PROBES:
                for interval in INTERVALS_MS:
                    print(f"{count} probes every {interval} ms", file=sys.stderr)
                    rows.append(trial(dsn, postmaster, count, interval))
        finally:
            lab.stop()
    _write(args.output, rows)
    return 0


def _write(path: Path, rows: list[Row]) -> None:
    faithful = [r for r in rows if r.faithful]
    best = max(faithful, key=lambda r: r.samples_per_s, default=None)
    largest = "none"
    if best is not None:
        load = f"{best.probes} probes every {best.interval_ms} ms"
        largest = f"{best.samples_per_s:,.0f} samples/s ({load})"
    text = "\n".join(
        [
            "## Probe capacity",
            "",
            "Generated by bench/capacity.py. postgres-read probes (timeout 500 ms, `slow` 50 ms)",
            "against site A of a postgres-pair lab on this machine; the bench freezes that server",
            f"(SIGSTOP of the postmaster and its children) for {FREEZE_S:g} s and takes the true",
            "length itself; the server allows 600 connections (each probe keeps 4). samples/s is",
            "the load asked (probes x 1000 / interval). Faithful: every probe saw one outage, its",
            "lower bound within one interval + 10 ms of the truth, and the checker did not call",
            "the run overloaded (more than 5% of samples late).",
            "",
            table(rows),
            "",
            f"Largest faithful load: {largest}.",
        ]
    )
    replace_section(path, "capacity", text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
