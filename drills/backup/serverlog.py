"""What a PostgreSQL server's log says about a recovery: when redo started and finished.

The lab's servers log with the default `log_line_prefix` ('%m [%p] ') and `log_timezone =
'UTC'`, so each line starts with a millisecond UTC time: "2026-12-02 16:00:01.234 UTC [42]".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) UTC \[\d+\] LOG:  (.*)$")


@dataclass(frozen=True)
class Redo:
    started_wall_ns: int | None = None
    done_wall_ns: int | None = None
    ready_wall_ns: int | None = None  # "database system is ready to accept connections"
    target_reached: str = ""  # "recovery stopping before commit of transaction 1234, ..."


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_redo(path: Path, offset: int) -> Redo:
    """The first redo of the log after byte `offset` (where the restored server's start began)."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return Redo()
    found: dict[str, int] = {}
    target = ""
    for line in text.splitlines():
        match = _STAMP.match(line)
        if not match:
            continue
        at = _wall_ns(match.group(1))
        message = match.group(2)
        for key, prefix in (
            ("start", "redo starts at"),
            ("done", "redo done at"),
            ("ready", "database system is ready to accept connections"),
        ):
            if message.startswith(prefix):
                found.setdefault(key, at)
        if message.startswith("recovery stopping") and not target:
            target = message
    return Redo(found.get("start"), found.get("done"), found.get("ready"), target)


def _wall_ns(stamp: str) -> int:
    moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000) * 1_000_000
