"""A `postgres-write` probe's own statements: `insert` and `read` written with `:run_id`,
`:probe` and `:id` where the values go, as psycopg runs them (`%(name)s`) and as libpq's
extended protocol runs them (`$1`...), on the event loop. The values always travel as
parameters, never inside the SQL text, with the same types on both engines (`id` bigint, the
others text). Quoted strings and identifiers, dollar-quoted strings and comments are left as
written, and so is `::name` (a cast)."""

from __future__ import annotations

import re
from collections.abc import Callable

# Things to keep whole, or (group "name") a placeholder.
_SCAN = re.compile(
    r"'(?:[^']|'')*'"  # a string
    r'|"(?:[^"]|"")*"'  # a quoted identifier
    r"|--[^\n]*"  # a comment to the end of the line
    r"|/\*.*?\*/"  # a block comment
    r"|\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)?\$"  # a dollar-quoted string
    r"|::\w+"  # a cast
    r"|(?<![:\w]):(?P<name>run_id|probe|id)\b",
    re.DOTALL,
)
TYPES = {"id": 20, "run_id": 25, "probe": 25}  # int8, text: what libpq is told


def _rewrite(text: str, placeholder: Callable[[str], str], escape: Callable[[str], str]) -> str:
    out, last = [], 0
    for match in _SCAN.finditer(text):
        out.append(escape(text[last : match.start()]))
        name = match.group("name")
        out.append(placeholder(name) if name else escape(match.group(0)))
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)


def names_in(text: str) -> set[str]:
    return {m.group("name") for m in _SCAN.finditer(text) if m.group("name")}


def for_psycopg(text: str) -> str:
    """`:name` -> `%(name)s`; a `%` of the statement's own is doubled."""
    return _rewrite(text, lambda name: f"%({name})s", lambda part: part.replace("%", "%%"))


def for_libpq(text: str) -> tuple[bytes, list[str]]:
    """`:name` -> `$N`, numbered in order of first use; the names in parameter order."""
    order: list[str] = []

    def number(name: str) -> str:
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return _rewrite(text, number, lambda part: part).encode(), order
