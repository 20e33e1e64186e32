"""Secrets: values a scenario takes from `${env:NAME}` or `${file:PATH}` never leave the
process in clear: records, histories, live output and everything derived from them show
`***` instead."""

from __future__ import annotations

from typing import Any

MASK = "***"
MIN_LENGTH = 3  # shorter values would mask ordinary text


class Redactor:
    def __init__(self, secrets: set[str] | None = None) -> None:
        self.secrets: list[str] = []
        self.add(secrets or set())

    def add(self, secrets: set[str]) -> None:
        found = set(self.secrets) | {s for s in secrets if len(s) >= MIN_LENGTH}
        self.secrets = sorted(found, key=len, reverse=True)  # longest first: no partial masks

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        return value

    def deep(self, value: Any) -> Any:
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.deep(k): self.deep(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        return value
