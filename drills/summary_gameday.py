"""The end-of-drill lines of a rehearsal with people: participants, manual steps, and the
incident level's response and recovery."""

from __future__ import annotations

from drills.durations import format_duration
from drills.records.model import RunRecord


def participants_line(record: RunRecord) -> str:
    return "participants: " + ", ".join(f"{p.name} ({p.role})" for p in record.participants)


def _seconds(value: float) -> str:
    return f"{value:.3f}s"


def level_rows(record: RunRecord) -> list[list[str]]:
    """The incident level's response and recovery, when the scenario has a level."""
    level = record.check.level
    if level is None:
        return []
    rows = []
    for name, label in (("response", "Response"), ("recovery", "Recovery")):
        found = record.verdicts.get(name)
        if found is not None:
            measured = _seconds(found.measured) if found.measured is not None else found.reason
            target = f"<= {format_duration(found.objective)}"
            rows.append([f"{label} (level {level.level})", target, measured, found.verdict.value])
    return rows


def manual_step_lines(record: RunRecord) -> list[str]:
    """One line per manual step: role, who acknowledged, how, and the operator's time."""
    lines = []
    for step in record.timeline:
        facts = step.facts.get("manual")
        if step.kind != "manual" or not isinstance(facts, dict):
            continue
        role = facts.get("role") or "anyone"
        if not facts.get("acknowledged"):
            lines.append(f"  {step.index + 1}. {role}: not acknowledged ({step.detail})")
            continue
        note = f": {facts['note']}" if facts.get("note") else ""
        lines.append(
            f"  {step.index + 1}. {role}: {facts.get('by')} ({facts.get('via')}) after "
            f"{facts.get('operator_time_s', 0):.3f}s{note}"
        )
    return lines
