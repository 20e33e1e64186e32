"""An objective's verdict: what was measured against what was promised."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    MET = "met"
    MISSED = "missed"
    UNKNOWN = "unknown"


@dataclass
class ObjectiveResult:
    name: str
    objective: float
    measured: float | None
    verdict: Verdict
    reason: str = ""


def verdict_le(name: str, objective: float, measured: float | None, why: str) -> ObjectiveResult:
    """Met when `measured` is at most `objective`; unknown when not measured. `why` says why
    not, or qualifies the figure (an RTO that is only a lower bound)."""
    if measured is None:
        return ObjectiveResult(name, objective, None, Verdict.UNKNOWN, why)
    verdict = Verdict.MET if measured <= objective else Verdict.MISSED
    return ObjectiveResult(name, objective, measured, verdict, why)
