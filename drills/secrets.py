"""Secrets: values a scenario takes from `${env:NAME}` or `${file:PATH}` never leave the
process in clear: records, histories, live output and everything derived from them show
`***` instead."""

from __future__ import annotations

from typing import Any

MASK = "***"
MIN_LENGTH = 3  # shorter values would mask ordinary text


class Redactor:
    def __init__(self, secrets: set[str] | None = None) -> None:
        self.secrets = sorted(
            (s for s in secrets or set() if len(s) >= MIN_LENGTH), key=len, reverse=True
        )

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
