"""Stalls of the machine, seen from outside the harness: a process per CPU, pinned to it, that
asks to wake every millisecond and notes each wake more than a tolerance late. Each runs
real-time one priority above the harness's probe loop (SCHED_RR 2 against 1) where the system
allows it: no process of this machine can hold it back, so it is late only when its CPU ran
nothing it could preempt (the kernel, interrupts) or did not run at all (the hypervisor).
A stall of every CPU at once is the whole machine's. A gap in the harness's samples that
overlaps one is the machine's as much as the harness's; one that overlaps none is the
harness's own."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TOLERANCE_NS = 8_000_000
PRIORITY = 2  # the probe loop's real-time priority + 1 (drills/priority.py)

WATCHER = f"""
import os, sys, time
os.sched_setaffinity(0, {{int(sys.argv[1])}})
try:
    os.sched_setscheduler(0, os.SCHED_RR, os.sched_param({PRIORITY}))
except OSError:
    pass
out = open(sys.argv[2], "w", buffering=1)
while True:
    due = time.monotonic_ns() + 1_000_000
    time.sleep(0.001)
    woke = time.monotonic_ns()
    if woke - due > {TOLERANCE_NS}:
        out.write(f"{{due}} {{woke}}\\n")
"""

Stall = tuple[int, int]  # (due, woke), monotonic ns


@contextmanager
def watching(directory: Path) -> Iterator[list[Path]]:
    """Run a watcher on every CPU this process may use, each writing `due woke` lines to a
    file of its own in `directory`, until the end."""
    cpus = sorted(os.sched_getaffinity(0))
    paths = [directory / f"stalls-cpu{cpu}" for cpu in cpus]
    watchers = [
        subprocess.Popen([sys.executable, "-c", WATCHER, str(cpu), str(path)])
        for cpu, path in zip(cpus, paths, strict=True)
    ]
    try:
        yield paths
    finally:
        for watcher in watchers:
            watcher.kill()
            watcher.wait(timeout=10)


def read(paths: list[Path]) -> list[list[Stall]]:
    """Each CPU's stalls."""
    per_cpu = []
    for path in paths:
        stalls = []
        for line in path.read_text().splitlines() if path.exists() else []:
            due, woke = line.split()
            stalls.append((int(due), int(woke)))
        per_cpu.append(stalls)
    return per_cpu


def everywhere(per_cpu: list[list[Stall]]) -> list[Stall]:
    """The stretches when every CPU was stalled at once."""
    common = per_cpu[0] if per_cpu else []
    for stalls in per_cpu[1:]:
        common = [(max(a, c), min(b, d)) for a, b in common for c, d in stalls if c < b and d > a]
    return common


def overlapping(gaps: list[Stall], stalls: list[Stall]) -> int:
    """How many gaps (start, end) overlap a stall."""
    return sum(any(due < end and woke > start for due, woke in stalls) for start, end in gaps)


def main() -> int:
    """`python -m bench.machine_stalls SECONDS`: the watchers alone, nothing else of drills
    running: the machine's own stalls."""
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 600.0
    with tempfile.TemporaryDirectory(prefix="drills-stalls-") as directory:
        start = time.monotonic_ns()
        with watching(Path(directory)) as paths:
            time.sleep(seconds)
        per_cpu = read(paths)
    print(f"{seconds:.0f} s, a watcher per CPU, stalls over {TOLERANCE_NS / 1e6:.0f} ms:")
    for cpu, stalls in zip(sorted(os.sched_getaffinity(0)), per_cpu, strict=True):  # as watched
        print(f"  CPU {cpu}: {len(stalls)}{_listed(stalls, start)}")
    common = everywhere(per_cpu)
    print(f"  every CPU at once: {len(common)}{_listed(common, start)}")
    return 0


def _listed(stalls: list[Stall], start_ns: int) -> str:
    each = [f"{(b - a) / 1e6:.1f} ms at {(a - start_ns) / 1e9:.0f} s" for a, b in stalls]
    return ": " + ", ".join(each) if each else ""


if __name__ == "__main__":
    sys.exit(main())
