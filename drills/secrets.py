"""Secrets: values a scenario takes from `${env:NAME}` or `${file:PATH}` never leave the
process in clear: records, histories, live output and everything derived from them show
`***` instead. Only values are masked, never keys; and strings the harness made itself and
must find again (the run id, hence the history's file name) are kept whole even where a
secret occurs inside them."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
MIN_LENGTH = 3  # shorter values would mask ordinary text


class Redactor:
    def __init__(self, secrets: set[str] | None = None) -> None:
        self.secrets: list[str] = []
        self.kept: list[str] = []
        self._kept_pattern: re.Pattern[str] | None = None
        self.add(secrets or set())

    def add(self, secrets: set[str]) -> None:
        found = set(self.secrets) | {s for s in secrets if len(s) >= MIN_LENGTH}
        self.secrets = sorted(found, key=len, reverse=True)  # longest first: no partial masks

    def keep(self, text: str) -> None:
        """Never mask inside `text` (a run id), wherever it occurs."""
        if text and text not in self.kept:
            self.kept = sorted([*self.kept, text], key=len, reverse=True)
            self._kept_pattern = re.compile("(" + "|".join(map(re.escape, self.kept)) + ")")

    def text(self, value: str) -> str:
        if not self.secrets:
            return value
        if self._kept_pattern is None:
            return self._mask(value)
        parts = self._kept_pattern.split(value)  # odd indexes: the kept strings themselves
        return "".join(part if i % 2 else self._mask(part) for i, part in enumerate(parts))

    def _mask(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        return value

    def deep(self, value: Any) -> Any:
        """`value` with every string inside masked; dictionary keys are left as they are."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        return value
