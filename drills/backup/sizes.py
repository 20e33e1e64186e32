"""Sizes as written in scenarios (`size: 2GB`, `project_size: 500GB`) and as printed.

The units are PostgreSQL's memory units, with its 1024 multiples and its spelling:
`B`, `kB`, `MB`, `GB`, `TB` (so `1GB` is 1,073,741,824 bytes). pgBackRest prints sizes with the
same multiples, so one convention serves both.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$")
_HINT = "write a number with a unit (B, kB, MB, GB, TB; 1024 multiples), e.g. 2GB"


def parse_size(value: object) -> int:
    """Bytes in `value` (`"2GB"` -> 2147483648; units B, kB, MB, GB, TB in multiples of
    1024, spelled as PostgreSQL spells them). A bare number is refused: its unit would be a
    guess."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"{value!r} is not a size: {_HINT}")
    match = _PATTERN.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a size: {_HINT}")
    number, unit = match.groups()
    if unit not in UNITS:
        raise ValueError(f"{value!r}: unknown unit {unit!r}: {_HINT}")
    size = round(float(number) * UNITS[unit])
    if size <= 0:
        raise ValueError(f"{value!r}: a size must be more than 0 bytes")
    return size


def format_size(size_bytes: float) -> str:
    """`312 MB`, `1.5 GB`: the largest unit that keeps the number at least 1, three figures."""
    for unit in ("TB", "GB", "MB", "kB"):
        if abs(size_bytes) >= UNITS[unit]:
            return f"{size_bytes / UNITS[unit]:.3g} {unit}"
    return f"{size_bytes:.0f} B"


Size = Annotated[int, BeforeValidator(parse_size)]
