"""TEMPORARY stub until the bunits branch lands."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator

_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def parse_size(value: object) -> int:
    import re

    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(B|kB|MB|GB|TB)\s*$", str(value))
    if not m:
        raise ValueError(f"{value!r} is not a size")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


Size = Annotated[int, BeforeValidator(parse_size)]


@dataclass
class FillResult:
    db_bytes: int
    seconds: float
    scale: int


def fill_database(
    pgbench: Path,
    host: str,
    port: int,
    size_bytes: int,
    run: Callable[[list[str], str], None],
    progress: Callable[[str], None],
) -> FillResult:
    scale = max(1, size_bytes // 16_000_000)
    t = time.monotonic()
    run(
        [
            str(pgbench),
            "-i",
            "-I",
            "dtGvp",
            "-s",
            str(scale),
            "-h",
            host,
            "-p",
            str(port),
            "-U",
            "postgres",
            "postgres",
        ],
        "pgbench -i",
    )
    return FillResult(scale * 16_000_000, time.monotonic() - t, scale)
