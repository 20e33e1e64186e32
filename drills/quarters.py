"""Calendar quarters (UTC): the period drills are required in, reported on and budgeted by."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int  # 1-4

    @classmethod
    def parse(cls, text: str) -> Quarter:
        match = _QUARTER.match(text.strip())
        if not match or not 1 <= int(match.group(1)) <= 9998:
            raise ValueError(f"{text!r} is not a quarter: write e.g. 2026-Q4")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, when: datetime) -> Quarter:
        when = _utc(when)
        return cls(when.year, (when.month - 1) // 3 + 1)

    @classmethod
    def current(cls) -> Quarter:
        return cls.of(datetime.now(UTC))

    @property
    def start(self) -> datetime:
        return datetime(self.year, 3 * (self.number - 1) + 1, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the quarter."""
        return self.next().start

    def month_start(self, month: int) -> datetime:
        """Start of the quarter's `month`-th month (1-3)."""
        return datetime(self.year, 3 * (self.number - 1) + month, 1, tzinfo=UTC)

    def month_end(self, month: int) -> datetime:
        return self.month_start(month + 1) if month < 3 else self.end

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end

    def next(self) -> Quarter:
        return (
            Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)
        )

    def previous(self) -> Quarter:
        return (
            Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)
        )

    def last(self, count: int) -> list[Quarter]:
        """This quarter and the `count - 1` before it, oldest first."""
        quarters = [self]
        while len(quarters) < count:
            quarters.insert(0, quarters[0].previous())
        return quarters

    def __str__(self) -> str:
        return f"{self.year}-Q{self.number}"


def _utc(when: datetime) -> datetime:
    """Times without an offset are UTC, as every time drills writes is."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def parse_time(text: str) -> datetime:
    """A record's `started_at` (ISO 8601, `Z` for UTC)."""
    return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
