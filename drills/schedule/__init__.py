"""Required rehearsals: which scenarios must run each quarter, and whether they have.

`scenarios/schedule.yaml`:

    version: 1
    required:
      - scenario: db-failover            # quarterly, any time in the quarter
      - scenario: network-partition
        month: 2                         # in the second month of each quarter

A requirement is `done` once a run of its scenario passed inside its window, `upcoming` before
the window opens, `due` while it is open without a passing run, and `overdue` once it closed
without one.

- `model`: the schedule file and `status`, the state of each requirement in a quarter;
- `due`: that state as a table, a summary line or JSON (`drills due`);
- `entries`: cron, systemd and Kubernetes entries that start each drill (`drills schedule`).
"""

from drills.schedule.model import (
    Requirement,
    Schedule,
    State,
    Status,
    is_schedule,
    load_schedule,
    status,
)

__all__ = [
    "Requirement",
    "Schedule",
    "State",
    "Status",
    "is_schedule",
    "load_schedule",
    "status",
]
