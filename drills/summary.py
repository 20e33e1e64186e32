"""The end-of-drill tables: objective / measured / verdict, probes, and where time went."""

from __future__ import annotations

from textwrap import fill

from tabulate import tabulate

from drills.checker import Verdict
from drills.durations import format_duration
from drills.records.model import FailoverRecord, HarnessRecord, RunRecord, SplitBrainRecord
from drills.records.restore import RestoreRecord, RestoreStepRecord
from drills.summary_gameday import level_rows, manual_step_lines


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}s"


def _pct(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def render(record: RunRecord) -> str:
    if not record.probes:  # the drill never started: only the reason matters
        return f"verdict: ERROR: {record.error or 'no probe ran'}"
    out = [
        tabulate(
            _objective_rows(record),
            headers=["objective", "target", "measured", "verdict"],
            tablefmt="github",
        )
    ]
    out += _findings(record)
    out.append(_probe_table(record))
    if record.harness is not None and record.harness.lag_max_ms is not None:
        out.append(_harness_line(record.harness))
    if record.phases_s:
        out.append("wall time: " + ", ".join(f"{k} {v:.1f}s" for k, v in record.phases_s.items()))
    out.append(f"verdict: {_verdict_line(record)}")
    return "\n\n".join(out)


def _harness_line(h: HarnessRecord) -> str:
    return (
        f"harness lag: p50 {h.lag_p50_ms:.1f}ms, p99 {h.lag_p99_ms:.1f}ms, max "
        f"{h.lag_max_ms:.1f}ms; {h.late} of {h.samples} samples late ({h.late_share:.1%}), "
        "left out of downtime"
    )


def _objective_rows(record: RunRecord) -> list[list[str]]:
    m, o = record.measurements, record.objectives
    interval = m.probe_interval_s
    resolution = f" (±{interval * 1000:.0f}ms)" if interval else ""
    share = f", {m.rto_s / o.rto_s:.2%} of objective" if m.rto_s is not None and o.rto_s else ""
    rpo = "n/a"
    restored = record.restore.writes if record.restore is not None else None
    if m.rpo_s is not None and restored is not None:
        rpo = f"{_seconds(m.rpo_s)} to the restore's recovery point, {restored.lost} writes lost"
    elif m.rpo_s is not None:
        rpo = f"{_seconds(m.rpo_s)}, {m.lost_writes} of {m.writes_acked} acked writes lost"
    availability = "n/a"
    if m.downtime_s is not None:
        availability = (
            f"downtime {_seconds(m.downtime_s)} "
            f"(lower bound {_seconds(m.downtime_lower_s)}), "
            f"{_pct(m.error_budget_share, 2)} of the quarter's "
            f"{m.error_budget_s or 0:.1f}s error budget"
        )
    rows = [
        [
            "RTO",
            f"<= {format_duration(o.rto_s)}",
            _seconds(m.rto_s) + resolution + share,
            record.judged("rto"),
        ],
        ["RPO (data-loss window)", f"<= {format_duration(o.rpo_s)}", rpo, record.judged("rpo")],
        [
            "Availability",
            f">= {_pct(o.availability, 2)}",
            availability,
            record.judged("availability"),
        ],
    ]
    judged = record.verdicts.get("split_brain")
    if judged is not None:
        brain = record.split_brain
        measured = "none: " + judged.reason
        if brain is not None and brain.detected:
            measured = _split_brain_measured(brain, judged.measured)
        rows.append(["Split brain", "none", measured, judged.verdict.value])
    for name, label, target in _RESTORE_ROWS:
        found = record.verdicts.get(name)
        if found is not None:
            measured = "n/a" if found.measured is None else f"{found.measured:g}"
            rows.append([label, target, measured, found.verdict.value])
    return rows + level_rows(record) + _probe_objective_rows(record)


def _probe_objective_rows(record: RunRecord) -> list[list[str]]:
    """The objectives of probes other than the service probe (`rto:NAME`, ...)."""
    rows = []
    for key, found in record.verdicts.items():
        objective, _, probe = key.partition(":")
        if not probe:
            continue
        if objective == "rto":
            interval = record.probes[probe].interval_s if probe in record.probes else None
            resolution = f" (±{interval * 1000:.0f}ms)" if interval else ""
            measured = _seconds(found.measured) + (resolution if found.measured else "")
            rows.append([f"RTO of {probe}", f"<= {format_duration(found.objective)}", measured])
        else:
            measured = "n/a" if found.measured is None else _pct(found.measured, 4)
            rows.append([f"Availability of {probe}", f">= {_pct(found.objective, 2)}", measured])
        if found.measured is not None and found.reason:
            rows[-1][2] += f": {found.reason}"
        rows[-1].append(found.verdict.value)
    return rows


_RESTORE_ROWS = (
    ("resurrected_writes", "Resurrected writes", "0"),
    ("incident_undone", "Incident undone (1: yes)", "1"),
    ("restored_data_sound", "Restored data sound (pg_amcheck; 1: yes)", "1"),
)


def _split_brain_measured(brain: SplitBrainRecord, writes: float | None) -> str:
    said = []
    if brain.window_s is not None:
        said.append(f"{writes} writes acked by two databases at once in {brain.window_s:.3f}s")
    if brain.two_primaries is not None:
        said.append(
            f"{len(brain.two_primaries.members)} members answered as primary at once in "
            f"{brain.two_primaries.window_s:.3f}s"
        )
    return "; ".join(said)


def _findings(record: RunRecord) -> list[str]:
    """The paragraphs between the objectives and the probes, each only when it says something."""
    m = record.measurements
    out = []
    reasons = [
        f"  {name}: {r.reason}"
        for name, r in record.verdicts.items()
        if r.verdict is Verdict.UNKNOWN
    ]
    if reasons:
        out.append("unknown because:\n" + "\n".join(reasons))
    restored = record.restore is not None and record.restore.step is not None
    if m.lost_writes and not restored:  # a restore says which of them it discarded, below
        ranges = [f"{a}-{b}" if a != b else str(a) for a, b in m.lost_ranges or []]
        if len(ranges) > 8:
            ranges = [*ranges[:4], f"... {len(ranges) - 6} more ...", *ranges[-2:]]
        out.append(
            f"lost writes: ids {', '.join(ranges)} ({m.holes} holes); recovered (unknown but "
            f"present): {m.writes_recovered}; unexpected: {m.unexpected_writes}; "
            f"duplicated: {m.duplicated_writes}"
        )
    out += _split_brain_findings(record.split_brain)
    if record.failover is not None:
        out.append(_failover(record.failover))
    if record.restore is not None:
        out.append(_restore(record.restore))
    served = [
        f"{name} {phase.replace('_', ' ')}: "
        + ", ".join(f"site {site} {n}" for site, n in counts.items())
        for name, p in record.probes.items()
        for phase, counts in p.served_by.items()
    ]
    if served:
        out.append("served by: " + "; ".join(served))
    if len(record.disruptions) > 1:
        out.append(_disruptions(record))
    if record.participants:
        out.append(
            "participants: " + ", ".join(f"{p.name} ({p.role})" for p in record.participants)
        )
    if manual := manual_step_lines(record):
        out.append("manual steps:\n" + "\n".join(manual))
    if m.replication_lag_peak_bytes is not None:
        out.append(
            f"replication lag peak (RPO exposure before any failover): "
            f"{m.replication_lag_peak_bytes:.0f} bytes, {m.replication_lag_peak_s:.3f}s"
        )
    return out


def _split_brain_findings(brain: SplitBrainRecord | None) -> list[str]:
    out = []
    if brain is not None and brain.window_s is not None:
        sides = "; ".join(
            f"{lineage}: {len(ids)} writes (ids {ids[0]}..{ids[-1]})"
            for lineage, ids in (brain.conflicting_ids or {}).items()
        )
        out.append(
            f"SPLIT BRAIN: two databases acknowledged writes at once for {brain.window_s:.3f}s "
            f"({brain.start_s:.3f}s to {brain.end_s:.3f}s into the drill): {sides}"
        )
    two = brain.two_primaries if brain is not None else None
    if two is not None:
        out.append(
            f"SPLIT BRAIN: {', '.join(two.members)} answered as primary at once for "
            f"{two.window_s:.3f}s ({two.start_s:.3f}s to {two.end_s:.3f}s into the drill, "
            f"{two.samples} cluster samples)"
        )
    return out


def _failover(failover: FailoverRecord) -> str:
    """Fault -> leader lost -> new leader elected -> service recovered, and the parts."""
    points = [
        ("service last ok", failover.service_last_ok_after_s),
        ("leader lost", failover.leader_lost_after_s),
        ("leader key expired", failover.leader_key_expired_after_s),
        ("new leader elected", failover.leader_elected_after_s),
        ("service recovered", failover.service_recovered_after_s),
    ]
    seen = ", ".join(f"{name} {_seconds(at)}" for name, at in points if at is not None)
    parts = failover.parts
    text = (
        f"failover: leader {failover.leader_before or 'unknown'} -> "
        f"{failover.leader_after or 'none seen'} (patroni probe {failover.probe}, "
        f"±{failover.interval_s * 1000:.0f}ms); after the fault: {seen or 'nothing seen'}"
    )
    if (parts.detection_s, parts.election_s, parts.reconnect_s) == (None, None, None):
        return text
    return (
        f"{text}\nRTO in parts: detection {_seconds(parts.detection_s)} + election "
        f"{_seconds(parts.election_s)} + reconnect {_seconds(parts.reconnect_s)}"
    )


_PART_NAMES = {"restore_copy": "restore copy", "server_start": "server start"}
_PART_NAMES |= {"wal_replay": "WAL replay", "first_ok": "first ok"}


def _restore(restore: RestoreRecord) -> str:
    """The restore measured, its writes and copy figures; standby rebuilds after it."""
    by_index = {s.index: s for s in restore.steps}
    measured = by_index.get(restore.step) if restore.step is not None else None
    lines = [] if measured is None else _restore_measured(restore, measured)
    lines += [_restore_copy(s) for s in restore.steps if s is not measured]
    return "\n  ".join(lines)


def _restore_measured(restore: RestoreRecord, step: RestoreStepRecord) -> list[str]:
    target = " ".join(str(step.target.get(k, "")) for k in ("type", "value")).strip()
    before = f" before {step.before_step!r}" if step.before_step else ""
    lines = [f"restore (step {step.index + 1}, node {step.node}, {step.mode}, to {target}{before})"]
    if restore.rto_s is None:
        lines.append(f"RTO n/a: {restore.rto_reason}")
    else:
        parts = " + ".join(
            f"{' and '.join(_PART_NAMES.get(n, n) for n in name.split('+'))} {value:.3f}"
            for name, value in restore.rto_parts_s.items()
        )
        lines.append(f"RTO {_seconds(restore.rto_s)} from the disruption start = {parts}")
        lines += [f"  ({note})" for note in restore.rto_notes]
    lines.append(_restore_rpo(restore))
    writes = restore.writes
    if writes is None:
        lines.append(f"writes: n/a: {restore.writes_reason}")
    else:
        lines.append(
            f"writes: lost {writes.lost}, resurrected {writes.resurrected}, discarded by the "
            f"restore {writes.discarded}, straddling the incident {writes.straddling} "
            f"(outcome unknown)"
            + (f"; lost ids {_ids(writes.lost_ids)}" if writes.lost_ids else "")
            + (f"; resurrected ids {_ids(writes.resurrected_ids)}" if writes.resurrected else "")
        )
    lines.append(_restore_copy(step))
    return lines


def _ids(ids: list[int]) -> str:
    shown = [str(i) for i in ids]
    return ", ".join(shown if len(shown) <= 8 else [*shown[:6], "...", shown[-1]])


def _restore_rpo(restore: RestoreRecord) -> str:
    predicted = (
        f"predicted from archive lag {_seconds(restore.predicted_rpo_s)}"
        if restore.predicted_rpo_s is not None
        else f"predicted n/a: {restore.predicted_rpo_reason}"
    )
    if restore.rpo_s is None:
        return f"RPO n/a: {restore.rpo_reason}; {predicted}"
    point = restore.recovery_point
    at = "" if point is None else f", recovery point write {point.write_id} acked {point.ack_at}"
    why = f" ({restore.rpo_reason})" if restore.rpo_reason else ""
    return f"RPO {_seconds(restore.rpo_s)}{why}{at}; {predicted}"


def _restore_copy(step: RestoreStepRecord) -> str:
    said = [f"step {step.index + 1} {step.mode} restore of {step.node} from {step.backup or '?'}"]
    if step.copy_s is not None:
        size = "" if step.db_bytes is None else f"{step.db_bytes / 1e6:.1f} MB in "
        said.append(f"copy {size}{step.copy_s:.3f}s (pgBackRest {_seconds(step.pgbackrest_s)})")
    if step.throughput_mb_s is not None:
        said.append(f"{step.throughput_mb_s:.1f} MB/s (MB = 10^6 bytes)")
    if step.replay_s is not None:
        said.append(f"WAL replay {step.replay_s:.3f}s")
    if step.backup_age_at_incident_s is not None:
        said.append(f"backup {step.backup_age_at_incident_s:.3f}s old at the incident")
    if step.projection is not None:
        said.append(
            f"{step.projection.label}: {step.projection.size_bytes / 1e6:.0f} MB in "
            f"{step.projection.copy_s:.1f}s"
        )
    if step.verify:
        said.append("verify: " + ", ".join(f"{k} {v}" for k, v in step.verify.items()))
    if step.check is not None:
        undone = "yes" if step.check.get("undone") else "NO"
        check = step.check
        said.append(
            f"incident undone: {undone} ({check.get('query')!r}: {check.get('before')!r} before "
            f"the incident, {check.get('after')!r} after the restore)"
        )
    return "; ".join(said)


def _disruptions(record: RunRecord) -> str:
    return "disruptions: " + "; ".join(
        f"after step {d.step + 1} ({d.kind}) "
        + ("still down from the step before" if d.down_already else f"{d.downtime_s:.3f}s down")
        for d in record.disruptions
    )


PROBE_LEGEND = (
    "service: the probe the RTO and availability are measured on; writes: the probe whose lost "
    "acknowledged writes are the RPO. ±: one sampling interval of the service probe, the "
    "resolution of the RTO. downtime LOW-HIGH: an outage lasts at least from its first failed "
    "sample and at most from the last ok one before it, to the first ok sample after. A port "
    "probe (tcp) watches one server, which can stay down while clients are served by the "
    "other site: its downtime can exceed the RTO."
)


def _role(name: str, record: RunRecord) -> str:
    roles = [
        role
        for role, probe in (
            ("service", record.check.service_probe),
            ("writes", record.check.write_probe),
        )
        if probe == name
    ]
    return f"{name} ({', '.join(roles)})" if roles else name


def _probe_table(record: RunRecord) -> str:
    rows = [
        [
            _role(name, record),
            p.kind,
            f"{p.interval_s * 1000:.0f}ms",
            p.samples,
            p.ok,
            p.fail,
            p.unknown,
            f"{p.downtime_lower_s:.3f}-{p.downtime_s:.3f}s",
            "n/a" if p.latency_p99_ms is None else f"{p.latency_p99_ms:.1f}ms",
        ]
        for name, p in record.probes.items()
    ]
    headers = ["probe", "kind", "every", "samples", "ok", "fail", "unknown", "downtime", "p99"]
    return tabulate(rows, headers=headers, tablefmt="github") + "\n\n" + fill(PROBE_LEGEND, 96)


def _verdict_line(record: RunRecord) -> str:
    verdict = record.verdict.value.upper()
    if record.aborted:
        verdict += f": {record.aborted}"
    if record.error:
        verdict += f": {record.error}"
    return verdict
