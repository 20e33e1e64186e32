"""A pgBackRest backup's or restore's progress, read from its console output.

With `--log-level-console=detail` pgBackRest 2.45 prints one line per file copied (or checked,
for a `--delta` restore), with the file's size and the share of the whole command done so far:

    ... P01 DETAIL: backup file /lab/a/base/5/16549 (64MB, 66.02%) checksum 90a1f503...
    ... P01 DETAIL: restore file /lab/a/base/5/16549 (66.6MB, 66.61%) checksum 3d3e278d...
    ... P01 DETAIL: restore file /lab/a/base/5/16549 - exists and matches backup (66.6MB, ...
    ... P01 DETAIL: restore file /lab/a/base/5/4153 - exists and is zero size (0B, 100.00%)

then its totals and its own elapsed time:

    ... P00   INFO: full backup size = 97.0MB, file total = 977
    ... P00   INFO: new backup label = 20261202-160111F
    ... P00   INFO: backup command end: completed successfully (18552ms)
    ... P00   INFO: restore size = 100.0MB, file total = 977

and on failure (on stderr, without a time stamp):

    ERROR: [040]: unable to restore to path '/lab/b' because it contains files

Sizes there are in multiples of 1024 (`KB` is 1024 bytes), as are the sizes printed here.
Samples captured from real runs are in tests/data/pgbackrest/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Literal

from drills.backup.sizes import format_size

Command = Literal["backup", "restore"]

PGBACKREST_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4, "PB": 1024**5}
FILE_LINE = re.compile(
    r"DETAIL: (?:backup|restore|match) file .*"
    r"\((?P<size>\d+(?:\.\d+)?)(?P<unit>[KMGTP]?B), (?P<percent>\d+(?:\.\d+)?)%\)"
    r"(?: checksum [0-9a-f]+)?\s*$"
)
TOTAL_LINE = re.compile(
    r"INFO: (?:(?:full|diff|incr) backup|restore) size = "
    r"(?P<size>\d+(?:\.\d+)?)(?P<unit>[KMGTP]?B), file total = (?P<files>\d+)"
)
LABEL_LINE = re.compile(r"INFO: new backup label = (?P<label>\S+)")
ERROR_LINE = re.compile(r"^(?:.*\s)?ERROR: (?P<message>\[\d+\]: .*)$")


def pgbackrest_bytes(number: str, unit: str) -> int:
    """`10.7`, `MB` -> bytes, with pgBackRest's 1024 multiples."""
    return round(float(number) * PGBACKREST_UNITS[unit])


def command_seconds(line: str, command: str) -> float | None:
    """pgBackRest's own time for `command`, from its `... command end: completed successfully
    (1234ms)` line; None for any other line (another command's end included: a backup is
    followed by an `expire`)."""
    match = re.search(
        rf"INFO: {re.escape(command)} command end: completed successfully \((\d+)ms\)", line
    )
    return int(match.group(1)) / 1000 if match else None


class TransferProgress:
    """What one pgBackRest command has copied so far; `feed` it the console lines.

    The total is pgBackRest's own: estimated from the first file line (bytes so far over the
    share done) and exact once the command prints its size. The rate counts from when this
    object was made, that is from the command's start.
    """

    def __init__(
        self,
        command: Command,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float = 1.0,
    ) -> None:
        self.command = command
        self.clock = clock
        self.interval_s = interval_s
        self.started = clock()
        self.percent: float | None = None
        self.files = 0
        self.file_bytes = 0  # the sizes printed so far (each rounded to three figures)
        self.reported_total: int | None = None
        self.pgbackrest_s: float | None = None
        self.label: str | None = None
        self.error: str | None = None
        self._last_due = self.started
        self._last_due_percent: float | None = None

    def feed(self, line: str) -> None:
        line = line.rstrip("\n")
        if match := FILE_LINE.search(line):
            self.files += 1
            self.file_bytes += pgbackrest_bytes(match["size"], match["unit"])
            self.percent = float(match["percent"])
        elif match := TOTAL_LINE.search(line):
            self.reported_total = pgbackrest_bytes(match["size"], match["unit"])
            self.files = int(match["files"])
            self.percent = 100.0
        elif match := LABEL_LINE.search(line):
            self.label = match["label"]
        elif match := ERROR_LINE.match(line):
            self.error = self.error or match["message"].strip()
        elif (seconds := command_seconds(line, self.command)) is not None:
            self.pgbackrest_s = seconds

    @property
    def total_bytes(self) -> int | None:
        if self.reported_total is not None:
            return self.reported_total
        if not self.percent:
            return None
        return round(self.file_bytes * 100 / self.percent)

    @property
    def done_bytes(self) -> int:
        total = self.total_bytes
        if total is None or self.percent is None:
            return self.file_bytes
        return round(total * self.percent / 100)

    def rate(self) -> float:
        """Bytes per second since the command started."""
        elapsed = self.clock() - self.started
        return self.done_bytes / elapsed if elapsed > 0 else 0.0

    def message(self) -> str:
        """`restore: 312 MB of 792 MB (39%), 150 MB/s`."""
        rate = f"{format_size(self.rate())}/s"
        total = self.total_bytes
        if total is None or self.percent is None:
            return f"{self.command}: {format_size(self.done_bytes)}, {rate}"
        done = format_size(self.done_bytes)
        return f"{self.command}: {done} of {format_size(total)} ({self.percent:.0f}%), {rate}"

    def due(self) -> bool:
        """Whether a progress message is due: something new since the last one, and at least
        `interval_s` after it (or after the start). True marks the message as given."""
        now = self.clock()
        if self.percent is None or self.percent == self._last_due_percent:
            return False
        if now - self._last_due < self.interval_s:
            return False
        self._last_due, self._last_due_percent = now, self.percent
        return True
