"""A hand-built history of a restore drill, shared by the recovery and record tests.

Times are milliseconds after START on the monotonic clock (`at(ms)`):

- write probe `writes`: write `seq` due at seq x 10 ms, acknowledged 1 ms later (ok), except
  writes due while the server is down (1500-2999 ms), which fail;
- service probe `svc`: a sample due every 20 ms, answering in 2 ms, down 1500-2999 ms;
- step 0 `drop` (disruptive, T0 = 1000 ms): the incident, which took effect at 1005 ms;
- step 1 `restore`: starts 1500, copy 1600-2600, server started 2610, redo 2700-2900 (from
  the server log), promoted 3000; the first service sample due after it completes at 3002.

`final_counts` is the ground truth of an exact restore to just before the incident: every
write acknowledged before 1005 ms present, the old server's writes after it discarded, the
restored server's writes present.
"""

from __future__ import annotations

from typing import Any

from drills.checker import CheckConfig, Objectives
from drills.history import Clock, FinalRead, History, Op, Outcome, ProbeInfo, StepEvent

MS = 1_000_000
START = 20_000 * MS
WALL = 1_795_000_000 * 1_000_000_000  # 2026-11-18T...Z
WRITE_EVERY_MS = 10
SVC_EVERY_MS = 20
DOWN_MS = (1500, 3000)
T0_MS = 1000
INCIDENT_MS = 1005
END_MS = 4000
CONFIG = CheckConfig(Objectives(rto_s=60, rpo_s=1, availability=0.9), "svc", "writes")


def at(ms: float) -> int:
    return START + int(ms * MS)


def _down(ms: float) -> bool:
    return DOWN_MS[0] <= ms < DOWN_MS[1]


def write_ops(latency_ms: dict[int, int] | None = None) -> list[Op]:
    ops = []
    for seq in range(END_MS // WRITE_EVERY_MS):
        due = seq * WRITE_EVERY_MS
        outcome = Outcome.FAIL if _down(due) else Outcome.OK
        latency = (latency_ms or {}).get(seq, 1)
        ops.append(Op("writes", seq, at(due), at(due + latency), outcome))
    return ops


def service_ops() -> list[Op]:
    ops = []
    for seq in range(END_MS // SVC_EVERY_MS):
        due = seq * SVC_EVERY_MS
        outcome = Outcome.FAIL if _down(due) else Outcome.OK
        ops.append(Op("svc", seq, at(due), at(due + 2), outcome))
    return ops


def exact_counts(ops: list[Op], incident_ms: float = INCIDENT_MS) -> dict[int, int]:
    """Writes acknowledged before the incident and those served after the promotion."""
    return {
        op.seq: 1
        for op in ops
        if op.outcome is Outcome.OK
        and (op.complete_ns < at(incident_ms) or op.invoke_ns >= at(3000))
    }


def restore_facts(**changes: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "node": "a",
        "mode": "in-place",
        "target": {"type": "xid", "value": "751", "exclusive": True},
        "before_step": "drop",
        "incident_ns": at(INCIDENT_MS),
        "backup": "20261202-160000F",
        "backup_end_ns": at(200),
        "start_ns": at(1500),
        "copy_start_ns": at(1600),
        "copy_end_ns": at(2600),
        "pgbackrest_s": 0.93,
        "db_bytes": 800_000_000,
        "server_start_ns": at(2610),
        "redo_start_ns": at(2700),
        "redo_done_ns": at(2900),
        "promoted_ns": at(3000),
        "verify": {"pgbackrest": "ok", "amcheck": "ok"},
        "check": {
            "query": "select count(*) from t",
            "before": "100",
            "after": "100",
            "undone": True,
        },
        "project_size_bytes": 500_000_000_000,
    }
    facts.update(changes)
    return {key: value for key, value in facts.items() if value is not None}


def restore_history(
    facts: dict[str, Any] | None = None,
    counts: dict[int, int] | None = None,
    writes: list[Op] | None = None,
    extra_ops: list[Op] | None = None,
    final_ok: bool = True,
) -> History:
    writes = write_ops() if writes is None else writes
    found = History(Clock(START - 1000 * MS, WALL))
    stop = at(END_MS)
    found.probes = [
        ProbeInfo("svc", "postgres-read", 0.02, 0.5, 0.25, START, stop),
        ProbeInfo("writes", "postgres-write", 0.01, 0.5, 0.25, START, stop),
    ]
    found.ops = service_ops() + writes + (extra_ops or [])
    drop = {"incident": {"kind": "sql", "node": "a", "at_ns": at(INCIDENT_MS)}}
    step = {} if facts is None else {"restore": facts}
    found.steps = [
        StepEvent(0, "sql", "drop", at(T0_MS), at(INCIDENT_MS), True, name="drop", facts=drop),
        StepEvent(1, "restore", "restore a", at(1500), at(3010), False, name="restore", facts=step),
    ]
    counts = exact_counts(writes) if counts is None else counts
    detail = "" if final_ok else "connection refused"
    found.final_reads = [FinalRead("writes", at(END_MS + 100), final_ok, counts, detail)]
    return found
