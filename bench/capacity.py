"""Probe capacity: how many samples per second drills measures faithfully on this machine.

For 1, 10, 30 and 100 postgres-read probes at 10, 20 and 100 ms against a PostgreSQL server
the bench started (the postgres-pair lab's site A, direct), the bench freezes the server itself:
SIGSTOP to the postmaster and every process under it, SIGCONT after 1 s, the true length taken
between those two calls by the bench, not by drills. It records samples/s, the harness's CPU per
sample, the worst lower-bound error against the truth, false outages (every outage beyond one
per probe), the share of samples the harness was late for, and whether the checker would call
the run overloaded. `--soak SECONDS` runs one load (30 probes at 10 ms) that long and reports RSS
growth and the gaps between samples of a probe (its own section of docs/benchmarks.md; not
part of `make bench`: a faithful soak is an hour long).

Writes its section of docs/benchmarks.md. Run with `make bench` (or `python -m bench.capacity`).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from bench.sections import replace_section
from bench.soak import soak
from drills.checker import summarize_probe
from drills.engines import probe_runner
from drills.history import Clock, HistoryLog
from drills.labs.postgres_pair import PostgresPairConfig, PostgresPairLab
from drills.lateness import harness_lag, overload_error
from drills.openloop import start_all, stop_all
from drills.probe import Probe
from drills.proctree import descendants
from drills.signals import interruptible
from probes.postgres_read import PostgresReadConfig, PostgresReadProbe

ROOT = Path(__file__).resolve().parent.parent
PROBES = (1, 10, 30, 100)
INTERVALS_MS = (10, 20, 100)
CONNECTIONS = 4  # the probes' default
# 3,000 samples/s again with fewer connections per probe: fewer queries stuck in the frozen
# server, so a shorter drain after it thaws.
FEWER_CONNECTIONS = ((30, 10, 1), (30, 10, 2))
FREEZE_S = 1.0
# tcp and http (bench/tcp_capacity.py, bench/http_capacity.py): 3,000, 10,000 and 20,000 samples/s
SIMPLE_LOADS = ((30, 10, 4), (100, 10, 4), (200, 10, 4))
Trial = Callable[[int, int, int], "Row"]
BEFORE_S, AFTER_S = 1.5, 2.0


@dataclass
class Row:
    probes: int
    interval_ms: int
    connections: int
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
    _signal_all([pid, *descendants(pid)], sig)


def _stop_server(postmaster: int) -> list[int]:
    """Freeze the server: the postmaster first (it forks no backend once stopped), then every
    process under it; the processes stopped, for `_signal_all` to wake. Walking /proc takes
    milliseconds, so the thaw reuses this list instead of walking again after its timestamp."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(postmaster, signal.SIGSTOP)
    stopped = [postmaster, *descendants(postmaster)]
    _signal_all(stopped[1:], signal.SIGSTOP)
    return stopped


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for target in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, sig)


def trial(dsn: str, postmaster: int, count: int, interval_ms: int, connections: int) -> Row:
    log, truth, cpu = sample_through_a_freeze(dsn, postmaster, count, interval_ms, connections)
    return row(log, (count, interval_ms, connections), truth, cpu)


def sample_through_a_freeze(
    dsn: str, postmaster: int, count: int, interval_ms: int, connections: int
) -> tuple[HistoryLog, float, float]:
    """`count` postgres-read probes through a freeze of the server made here, outside drills:
    the history, the freeze's true length and the harness's CPU once sampling (seconds)."""
    config = {"kind": "postgres-read", "dsn": dsn, "interval": f"{interval_ms}ms"}
    config |= {"timeout": "500ms", "slow": "50ms", "connections": connections}
    probes: list[Probe] = [
        PostgresReadProbe(f"r{i}", PostgresReadConfig.model_validate(config), "capacity")
        for i in range(count)
    ]

    def freeze() -> float:
        try:
            stopped = _stop_server(postmaster)
            frozen = time.monotonic_ns()
            time.sleep(FREEZE_S)
            thawed = time.monotonic_ns()
            _signal_all(stopped, signal.SIGCONT)
        finally:
            _freeze(postmaster, signal.SIGCONT)
        return (thawed - frozen) / 1e9

    return sample_through(probes, freeze)


def sample_through(
    probes: list[Probe], outage: Callable[[], float]
) -> tuple[HistoryLog, float, float]:
    """Sample `probes` through the outage `outage()` makes and measures (its true length, s):
    the history, that length and the harness's CPU once sampling (seconds)."""
    log = HistoryLog(Clock.now())
    runners = [probe_runner(p, log, log.history.clock) for p in probes]
    try:
        start_all(runners)
        cpu = time.process_time()
        time.sleep(BEFORE_S)
        truth = outage()
        time.sleep(AFTER_S)
    finally:
        stop_all(runners)
    return log, truth, time.process_time() - cpu


def row(log: HistoryLog, load: tuple[int, int, int], truth: float, cpu: float) -> Row:
    count, interval_ms, connections = load
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
        connections=connections,
        samples_per_s=count * 1000 / interval_ms,  # the load asked; late ones are counted
        cpu_ms_per_sample=cpu * 1000 / max(1, len(history.ops)),
        worst_lower_error_ms=None if None in errors else max(known),
        false_outages=false_outages,
        late_share=lag.late_share,
        overloaded=overload_error(lag) is not None,
    )


def _verdict(measured: Row) -> str:
    if measured.overloaded:
        return "error (overloaded)"
    return "faithful" if measured.faithful else "NOT faithful"


def table(rows: list[Row]) -> str:
    body = [
        [
            r.probes,
            f"{r.interval_ms} ms",
            r.connections,
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
    headers = ["probes", "every", "connections", "samples/s", "CPU ms/sample"]
    headers += ["worst lower error ms"]
    headers += ["false outages", "late", "verdict"]
    return tabulate(body, headers=headers, tablefmt="github")


def table_main(doc: str | None, section: str, kind: str, trial: Trial, text: list[str]) -> int:
    """The main of a bench that measures LOADS of `kind` probes with `trial` and writes `text`
    and their table as `section` of docs/benchmarks.md."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    rows = []
    for count, interval, connections in SIMPLE_LOADS:
        print(f"{count} {kind} probes every {interval} ms", file=sys.stderr)
        rows.append(trial(count, interval, connections))
    written = "\n".join([*text, "", table(rows)])
    replace_section(args.output, section, written)
    print(written)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--soak", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument(
        "--only",
        metavar="PROBES:MS[:CONNECTIONS]",
        help="run one load (for example 30:10) and print its row; docs are left alone",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    loads = _loads(args.only)  # a bad --only is refused before a lab is started
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
                found = soak(dsn, args.soak)
                replace_section(args.output, "soak", found.text())
                print(found.text())
                return 0
            rows = []
            for count, interval, connections in loads:
                load = f"{count} probes every {interval} ms, {connections} connections each"
                print(load, file=sys.stderr)
                rows.append(trial(dsn, postmaster, count, interval, connections))
        finally:
            lab.stop()
    if args.only:
        print(table(rows))
        return 0
    _write(args.output, rows)
    return 0


def _loads(only: str | None) -> list[tuple[int, int, int]]:
    if only is None:
        grid = itertools.product(PROBES, INTERVALS_MS, [CONNECTIONS])
        return [*grid, *FEWER_CONNECTIONS]
    parts = only.split(":")
    if len(parts) not in (2, 3) or not all(part.isdigit() for part in parts):
        raise SystemExit(f"--only {only}: expected PROBES:MS[:CONNECTIONS], for example 30:10:1")
    numbers = [int(part) for part in parts]
    if 0 in numbers:
        raise SystemExit(f"--only {only}: probes, interval and connections must be above 0")
    return [(numbers[0], numbers[1], numbers[2] if len(parts) == 3 else CONNECTIONS)]


def _write(path: Path, rows: list[Row]) -> None:
    faithful = [r for r in rows if r.faithful and r.connections == CONNECTIONS]
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
            "(SIGSTOP to the postmaster, then to every process under it; SIGCONT to the same",
            f"processes) for {FREEZE_S:g} s and takes the true length itself, between the two;",
            "the server allows 600 connections (each probe keeps `connections`,",
            "4 by default). samples/s is the load asked (probes x 1000 / interval). Faithful:",
            "every probe saw one outage, its lower bound within one interval + 10 ms of the",
            "truth, and the checker did not call the run overloaded (more than 5% of samples",
            "late). The last two rows repeat 3,000 samples/s with 1 and 2 connections per probe:",
            "each connection of a probe ends up holding a query in the frozen server, so fewer",
            "connections leave fewer queries (30 and 60 instead of 120) for the server and the",
            "harness to answer at once when it thaws.",
            "",
            table(rows),
            "",
            f"Largest faithful load with the default {CONNECTIONS} connections per probe: "
            f"{largest} (`drills run --dry-run` warns above the figure in",
            "drills/lateness.py, `CAPACITY_SAMPLES_PER_S`, set from this line).",
        ]
    )
    replace_section(path, "capacity", text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
