"""A higher scheduling priority for the threads that time the harness itself: the probe loop
(drills.reactor) and the stall watch (drills.stalls).

At 3,000 samples/s the server under test, on the same machine, keeps both cores busy. At the
default priority the loop's waits often ended 10-25 ms after their timers; ten niceness points
up, the probe soak (docs/benchmarks.md) still saw the loop stall past two intervals about once
every 100 s while the machine itself did not. So each thread asks for the real-time policy
SCHED_RR at its lowest priority (1): it then runs as soon as it is runnable, ahead of every
normal process, and it sleeps between samples, using a fraction of one core. The kernel's
real-time throttling (kernel.sched_rt_runtime_us: 95% of each period by default, -1 turns it
off) keeps CPU time for everything else even if such a thread never slept. Both threads get
the same policy: a stall watch starved while the loop is not would excuse the target's
slowness as the harness's.

Only the calling thread changes. Where the real-time policy is refused (no CAP_SYS_NICE, or
RLIMIT_RTPRIO 0: a container, a user), the thread lowers its niceness by 10 instead, which
needs CAP_SYS_NICE or RLIMIT_NICE, and otherwise keeps the default. `DRILLS_PRIORITY=nice`
asks for the niceness alone, `DRILLS_PRIORITY=none` for no change; any other value is the
default.
"""

from __future__ import annotations

import contextlib
import os
import threading

BOOST = 10  # niceness points below the rest of the process
REALTIME_PRIORITY = 1  # the lowest of SCHED_RR


def raise_thread_priority() -> str:
    """Raise the calling thread's priority; return what it got: `realtime`, `nice` or ``."""
    wanted = os.environ.get("DRILLS_PRIORITY", "realtime")
    wanted = wanted if wanted in ("nice", "none") else "realtime"
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
