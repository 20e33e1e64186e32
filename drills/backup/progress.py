"""TEMPORARY stub until the bunits branch lands."""

from __future__ import annotations


class TransferProgress:
    def __init__(self, what: str) -> None:
        self.what = what
        self.last = 0.0
        self.lines = 0

    def feed(self, line: str) -> None:
        self.lines += 1

    def due(self, now: float) -> bool:
        if now - self.last >= 1.0:
            self.last = now
            return True
        return False

    def message(self) -> str:
        return f"{self.what}: {self.lines} lines"
