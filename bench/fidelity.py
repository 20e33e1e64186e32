"""Measurement-fidelity benchmark: how close are drills' figures to the truth?

1. Ground-truth outages made by the fault proxy (a blackhole from t0 to t1, both times taken
   by the proxy itself as it applied the change) of 0.2 s, 1 s and 5 s, measured by read
   probes at 10, 20 and 100 ms, each repeated 5 times: error of both downtime bounds.
2. Write-probe throughput against a bare psycopg insert loop on the same server.
3. The harness's CPU seconds per probe-second.

Prints a table and writes docs/benchmarks.md. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from tabulate import tabulate

from bench.sections import replace_section
from drills.checker import summarize_probe
from drills.engines import probe_runner
from drills.history import Clock, HistoryLog
from drills.labs.postgres_pair import PostgresPairConfig, PostgresPairLab
from drills.network.proxy import Proxy
from drills.network.toxics import STREAMS, Toxic
from drills.openloop import start_all, stop_all
from drills.probe import run_to_end
from drills.signals import interruptible
from probes.postgres_read import PostgresReadConfig, PostgresReadProbe
from probes.postgres_write import PostgresWriteConfig, PostgresWriteProbe
from probes.tcp import TcpConfig, TcpProbe

ROOT = Path(__file__).resolve().parent.parent
INTERVALS_MS = (10, 20, 100)
OUTAGES_S = (0.2, 1.0, 5.0)
SLOW = "50ms"  # an ok held longer than this by the blackhole counts as down


@dataclass
class Trial:
    outage_s: float
    interval_ms: int
    truth_s: float
    lower_s: float
    upper_s: float

    @property
    def lower_error_ms(self) -> float:
        return (self.lower_s - self.truth_s) * 1000

    @property
    def upper_error_ms(self) -> float:
        return (self.upper_s - self.truth_s) * 1000


class ChangeTimes:
    """Monotonic times at which the proxy applied each change."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: list[tuple[str, int]] = []

    def __call__(self, link: str, change: str, at_ns: int) -> None:
        with self.lock:
            self.times.append((change, at_ns))

    def last(self, prefix: str) -> int:
        with self.lock:
            return max(at for change, at in self.times if change.startswith(prefix))


def outage_trial(proxy: Proxy, changes: ChangeTimes, dsn: str, outage_s: float) -> list[Trial]:
    log = HistoryLog(Clock.now())
    runners = []
    for interval in INTERVALS_MS:
        config = PostgresReadConfig(
            kind="postgres-read", dsn=dsn, interval=f"{interval}ms", timeout="1s", slow=SLOW
        )
        runners.append(
            probe_runner(
                PostgresReadProbe(f"read-{interval}ms", config, "bench"), log, log.history.clock
            )
        )
    start_all(runners)
    # A random phase between the probes' schedules and the fault, as a real outage has.
    time.sleep(1.0 + random.uniform(0, max(INTERVALS_MS) / 1000))
    for stream in STREAMS:
        proxy.add_toxic("clients-a", Toxic(f"hole-{stream}", "timeout", stream))
    time.sleep(outage_s)
    proxy.heal("clients-a")
    time.sleep(1.5)
    stop_all(runners)
    start, end = changes.last("+timeout"), changes.last("-hole")
    truth = (end - start) / 1e9
    trials = []
    for runner, interval in zip(runners, INTERVALS_MS, strict=True):
        info = log.history.probe(runner.name)
        assert info is not None
        summary = summarize_probe(log.history, info, stable=3)
        trials.append(
            Trial(outage_s, interval, truth, summary.downtime_lower_s, summary.downtime_s)
        )
    return trials


def write_throughput(dsn: str, seconds: float) -> tuple[float, float]:
    """Inserts per second: a bare psycopg loop, and the client a write sample takes (the
    non-blocking one the event loop drives, here driven on this thread)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_bare (id bigint)")
        count, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            conn.execute("INSERT INTO bench_bare (id) VALUES (%s)", (count,))
            count += 1
    bare = count / seconds
    config = PostgresWriteConfig(kind="postgres-write", dsn=dsn)
    probe = PostgresWriteProbe("bench-writes", config, "bench-throughput")
    probe.prepare()
    loop = probe.loop_client()
    assert loop is not None, "the lab's DSN names its hosts by address"
    loop.warm_up()
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        count += 1
        run_to_end(loop.exchange(count))
    loop.close()
    return bare, count / seconds


def cpu_per_probe_second(dsn: str, host: str, port: int, seconds: float) -> float:
    log = HistoryLog(Clock.now())
    probes = [
        PostgresReadProbe(
            "r", PostgresReadConfig(kind="postgres-read", dsn=dsn, interval="10ms"), "cpu"
        ),
        PostgresWriteProbe(
            "w", PostgresWriteConfig(kind="postgres-write", dsn=dsn, interval="10ms"), "cpu"
        ),
        TcpProbe("t", TcpConfig(kind="tcp", host=host, port=port, interval="10ms"), "cpu"),
    ]
    for probe in probes:
        probe.prepare()
    runners = [probe_runner(p, log, log.history.clock) for p in probes]
    before = time.process_time()
    start_all(runners)
    time.sleep(seconds)
    stop_all(runners)
    return (time.process_time() - before) / (len(runners) * seconds)


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "psycopg / libpq": f"{psycopg.__version__} / {psycopg.pq.version()}",
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="trials per outage length")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    changes = ChangeTimes()
    lab = PostgresPairLab(
        PostgresPairConfig(kind="postgres-pair"), lambda m: print(m, file=sys.stderr)
    )
    with interruptible():  # Ctrl-C or SIGTERM: the lab is still removed
        return _run(args, changes, lab)


def _run(args: argparse.Namespace, changes: ChangeTimes, lab: PostgresPairLab) -> int:
    handle = lab.start()
    assert lab.proxy is not None
    lab.proxy.on_change = changes
    try:
        postgres = subprocess.run(
            [str(lab.bin / "postgres"), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        trials: list[Trial] = []
        for outage in OUTAGES_S:
            for index in range(args.repeat):
                print(f"outage {outage}s, trial {index + 1}/{args.repeat}", file=sys.stderr)
                trials += outage_trial(lab.proxy, changes, handle.variables["a.dsn"], outage)
        print("write throughput", file=sys.stderr)
        bare, probe = write_throughput(handle.variables["a.direct_dsn"], 3.0)
        print("CPU per probe-second", file=sys.stderr)
        cpu = cpu_per_probe_second(
            handle.variables["a.direct_dsn"], "127.0.0.1", int(handle.variables["a.port"]), 10.0
        )
    finally:
        lab.stop()

    rows = []
    for outage in OUTAGES_S:
        for interval in INTERVALS_MS:
            group = [t for t in trials if t.outage_s == outage and t.interval_ms == interval]
            lower = [abs(t.lower_error_ms) for t in group]
            upper = [abs(t.upper_error_ms) for t in group]
            rows.append(
                [
                    f"{outage:g}s",
                    f"{interval}ms",
                    len(group),
                    f"{statistics.median(t.truth_s for t in group):.4f}s",
                    f"{statistics.median(t.lower_s for t in group):.4f}s",
                    f"{statistics.median(t.upper_s for t in group):.4f}s",
                    f"{statistics.median(lower):.1f} / {max(lower):.1f}",
                    f"{statistics.median(upper):.1f} / {max(upper):.1f}",
                ]
            )
    headers = [
        "outage",
        "probe every",
        "trials",
        "true length (median)",
        "lower bound (median)",
        "upper bound (median)",
        "|lower error| ms median / max",
        "|upper error| ms median / max",
    ]
    table = tabulate(rows, headers=headers, tablefmt="github")
    at20 = [t for t in trials if t.interval_ms == 20]
    worst_lower = max(abs(t.lower_error_ms) for t in at20)
    worst_upper = max(abs(t.upper_error_ms) for t in at20)
    ratio = probe / bare
    summary = tabulate(
        [
            [
                "worst |error| at 20 ms, lower bound",
                f"{worst_lower:.1f} ms",
                "<= 30 ms (one interval + 10 ms)",
                "met" if worst_lower <= 30 else "missed",
            ],
            [
                "worst |error| at 20 ms, upper bound",
                f"{worst_upper:.1f} ms",
                "<= 50 ms (two intervals + 10 ms: it starts at the last ok before)",
                "met" if worst_upper <= 50 else "missed",
            ],
            [
                "write probe / bare psycopg loop",
                f"{probe:.0f} / {bare:.0f} inserts/s = {ratio:.1%}",
                ">= 80%",
                "met" if ratio >= 0.8 else "missed",
            ],
            ["harness CPU per probe-second", f"{cpu * 1000:.1f} ms", "", ""],
        ],
        headers=["figure", "measured", "target", "verdict"],
        tablefmt="github",
    )
    facts = machine() | {"postgres": postgres}
    text = "\n".join(
        [
            "# Benchmarks: measurement fidelity",
            "",
            "Generated by `make bench` (bench/fidelity.py); the figures below come from the run",
            "on the machine described at the end. Re-run it on yours.",
            "",
            "## Downtime against ground truth",
            "",
            "Each trial blackholes the client link of a PostgreSQL server in drills' fault proxy",
            "(every byte held in both directions) from t0 to t1; the true length is t1 - t0",
            "as taken by the proxy when it applied each change. Three read probes (10, 20 and",
            f"100 ms, timeout 1 s, `slow` {SLOW}) run through it, and the checker's",
            "downtime bounds are compared with the truth. Errors: |measured - true| in ms.",
            "",
            table,
            "",
            "## Summary",
            "",
            summary,
            "",
            "Write throughput: one connection, autocommit single-row inserts for 3 s each, the",
            "bare loop first and then the write probe's non-blocking client (`postgres-write`,",
            "the path every write sample takes, driven here on one thread). CPU:",
            "`time.process_time()` of the harness while a 10 ms read, write and TCP probe ran",
            "for 10 s, divided by probe-seconds.",
            "",
            "## Machine",
            "",
            tabulate([[k, v] for k, v in facts.items()], headers=["", ""], tablefmt="github"),
            "",
        ]
    )
    replace_section(args.output, "fidelity", text)
    print(table)
    print()
    print(summary)
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
