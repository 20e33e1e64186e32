"""A higher scheduling priority for the threads that time the harness itself: the probe loop
(drills.reactor) and the stall watch (drills.stalls).

At 3,000 samples/s the server under test, on the same machine, keeps both cores busy; at the
default priority the loop's waits often ended 10-25 ms after their timers. So each thread
lowers its niceness by 10 (CAP_SYS_NICE or RLIMIT_NICE; otherwise it keeps the default).
Both threads get the same boost: a stall watch starved while the loop is not would excuse the
target's slowness as the harness's.

`DRILLS_PRIORITY=realtime` asks for the real-time policy SCHED_RR at its lowest priority
instead (reset on fork, so nothing these threads start inherits it): the loop then runs ahead
of every normal process, which kept its cadence through more of the machine's stalls in the
probe soak (docs/benchmarks.md), but it also runs ahead of a server under test on the same
machine: in one full test run, 300 probes at 10 ms against the test's own listener then saw a
90 ms outage the listener never made. Not the default for that reason.
`DRILLS_PRIORITY=none` changes nothing; any other value is the default.
"""

from __future__ import annotations

import contextlib
import os
import threading

BOOST = 10  # niceness points below the rest of the process
REALTIME_PRIORITY = 1  # the lowest of SCHED_RR


def raise_thread_priority() -> str:
    """Raise the calling thread's priority; return what it got: `realtime`, `nice` or ``."""
    wanted = os.environ.get("DRILLS_PRIORITY", "nice")
    wanted = wanted if wanted in ("realtime", "none") else "nice"
    thread = threading.get_native_id()
    if wanted == "realtime":
        with contextlib.suppress(OSError, AttributeError):  # AttributeError: not Linux
            policy = os.SCHED_RR | os.SCHED_RESET_ON_FORK  # threads and children it starts: normal
            os.sched_setscheduler(thread, policy, os.sched_param(REALTIME_PRIORITY))
            return "realtime"
    if wanted in ("realtime", "nice"):
        with contextlib.suppress(OSError):
            niceness = max(-20, os.getpriority(os.PRIO_PROCESS, thread) - BOOST)
            os.setpriority(os.PRIO_PROCESS, thread, niceness)
            return "nice"
    return ""
