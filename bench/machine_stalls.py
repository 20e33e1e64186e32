"""Stalls of the whole machine, seen from outside the harness: a separate process that asks to
wake every millisecond and notes each wake more than a tolerance late. It runs real-time
(SCHED_RR, as the harness's probe loop) where the system allows it, so that it is late only
when the machine (the kernel, the hypervisor) is, not because other processes took the CPUs.
A gap in the harness's samples that overlaps one of these is the machine's as much as the
harness's; one that overlaps none is the harness's own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TOLERANCE_NS = 8_000_000

WATCHER = f"""
import os, sys, time
try:  # as the harness's timing threads: late only when even a real-time thread is
    os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
except OSError:
    pass
out = open(sys.argv[1], "w", buffering=1)
while True:
    due = time.monotonic_ns() + 1_000_000
    time.sleep(0.001)
    woke = time.monotonic_ns()
    if woke - due > {TOLERANCE_NS}:
        out.write(f"{{due}} {{woke}}\\n")
"""


@contextmanager
def watching(path: Path) -> Iterator[Path]:
    """Run the watcher, writing `due woke` lines (monotonic ns) to `path`, until the end."""
    watcher = subprocess.Popen([sys.executable, "-c", WATCHER, str(path)])
    try:
        yield path
    finally:
        watcher.kill()
        watcher.wait(timeout=10)


def read(path: Path) -> list[tuple[int, int]]:
    stalls = []
    for line in path.read_text().splitlines():
        due, woke = line.split()
        stalls.append((int(due), int(woke)))
    return stalls


def overlapping(gaps: list[tuple[int, int]], stalls: list[tuple[int, int]]) -> int:
    """How many gaps (start, end) overlap a stall of the machine."""
    return sum(any(due < end and woke > start for due, woke in stalls) for start, end in gaps)
