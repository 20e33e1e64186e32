"""Durations as written in scenarios: `250ms`, `5s`, `1.5s`, `30m`, `2h`."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration(value: object) -> float:
    """Seconds in `value`; a bare number is refused because its unit would be a guess."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(
            f"{value!r} is not a duration: write a number with a unit (ms, s, m, h, d), e.g. 5s"
        )
    match = _PATTERN.match(value)
    if not match:
        raise ValueError(
            f"{value!r} is not a duration: write a number with a unit (ms, s, m, h, d), e.g. 5s"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.3g}s"
    if seconds < 7200:
        return f"{seconds / 60:.3g}m"
    return f"{seconds / 3600:.3g}h"


def parse_ratio(value: object) -> float:
    """`99.99%` or 0.9999."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a ratio: write e.g. 99.99%")
    if isinstance(value, int | float):
        ratio = float(value)
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            ratio = round(float(value.strip()[:-1]) / 100, 12)
        except ValueError:
            raise ValueError(f"{value!r} is not a percentage: write e.g. 99.99%") from None
    else:
        raise ValueError(f"{value!r} is not a ratio: write e.g. 99.99%")
    if not 0 < ratio <= 1:
        raise ValueError(f"{value!r} is out of range: an availability lies in (0%, 100%]")
    return ratio


Duration = Annotated[float, BeforeValidator(parse_duration)]
Ratio = Annotated[float, BeforeValidator(parse_ratio)]


def _check_interval(value: float) -> float:
    if not 0.05 <= value <= 10:
        raise ValueError("check_interval must be between 50ms and 10s")
    return value


# HAProxy's health-check interval in the labs that put it in front of their servers.
CheckInterval = Annotated[Duration, AfterValidator(_check_interval)]
