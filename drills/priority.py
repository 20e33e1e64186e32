"""A higher scheduling priority for the threads that time the harness itself: the probe loop
(drills.reactor) and the stall watch (drills.stalls).

At 3,000 samples/s the server under test, on the same machine, keeps both cores busy; at the
default priority the loop's waits often ended 10-25 ms after their timers (measured with the
probe soak, docs/benchmarks.md). Both threads get the same boost: a stall watch starved while
the loop is not would excuse the target's slowness as the harness's.

Only the calling thread changes. Lowering a niceness needs CAP_SYS_NICE (root outside a
container) or RLIMIT_NICE; without it the thread keeps the default. The boost weighs against
processes of the same scheduling group (the same session's autogroup or cgroup): servers the
harness starts itself, not a container's.
"""

from __future__ import annotations

import contextlib
import os
import threading

BOOST = 10  # niceness points below the rest of the process


def raise_thread_priority() -> None:
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        wanted = max(-20, os.getpriority(os.PRIO_PROCESS, thread) - BOOST)
        os.setpriority(os.PRIO_PROCESS, thread, wanted)
