"""A `postgres-write` probe's own statements: `insert` and `read` written with `:run_id`,
`:probe` and `:id` where the values go, as psycopg runs them (`%(name)s`) and as libpq's
extended protocol runs them (`$1`...), on the event loop. The values always travel as
parameters, never inside the SQL text."""

from __future__ import annotations

import re

PLACEHOLDER = re.compile(r"(?<![:\w]):(run_id|probe|id)\b")


def names_in(text: str) -> set[str]:
    return {match[1] for match in PLACEHOLDER.finditer(text)}


def for_psycopg(text: str) -> str:
    """`:name` -> `%(name)s`; a `%` of the statement's own is doubled."""
    return PLACEHOLDER.sub(lambda m: f"%({m[1]})s", text.replace("%", "%%"))


def for_libpq(text: str) -> tuple[bytes, list[str]]:
    """`:name` -> `$N`, numbered in order of first use; the names in parameter order."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in order:
            order.append(match[1])
        return f"${order.index(match[1]) + 1}"

    return PLACEHOLDER.sub(number, text).encode(), order
