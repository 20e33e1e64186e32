"""The end-of-drill tables: objective / measured / verdict, probes, and where time went."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from drills.durations import format_duration


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}s"


def _pct(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def render(record: dict[str, Any]) -> str:
    if not record["probes"]:  # the drill never started: only the reason matters
        return f"verdict: ERROR: {record.get('error') or 'no probe ran'}"
    m = record["measurements"]
    v = record["verdicts"]
    o = record["objectives"]
    interval = m.get("probe_interval_s")
    resolution = f" (±{interval * 1000:.0f}ms)" if interval else ""
    rows = [
        [
            "RTO",
            f"<= {format_duration(o['rto_s'])}",
            _seconds(m["rto_s"])
            + resolution
            + (
                f", {m['rto_s'] / o['rto_s']:.2%} of objective"
                if m["rto_s"] is not None and o["rto_s"]
                else ""
            ),
            v["rto"]["verdict"],
        ],
        [
            "RPO (data-loss window)",
            f"<= {format_duration(o['rpo_s'])}",
            (
                _seconds(m["rpo_s"])
                + f", {m['lost_writes']} of {m['writes_acked']} acked writes lost"
            )
            if m["rpo_s"] is not None
            else "n/a",
            v["rpo"]["verdict"],
        ],
        [
            "Availability",
            f">= {_pct(o['availability'], 2)}",
            (
                f"downtime {_seconds(m['downtime_s'])} "
                f"(lower bound {_seconds(m['downtime_lower_s'])}), "
                f"{_pct(m['error_budget_share'], 2)} of the quarter's "
                f"{m['error_budget_s']:.1f}s error budget"
            )
            if m["downtime_s"] is not None
            else "n/a",
            v["availability"]["verdict"],
        ],
    ]
    if "split_brain" in v:
        brain = record.get("split_brain") or {}
        rows.append(
            [
                "Split brain",
                "none",
                f"{v['split_brain']['measured']} writes acked by two databases at once in "
                f"{brain.get('window_s', 0):.3f}s"
                if brain.get("detected")
                else "none: one database acknowledged writes at a time",
                v["split_brain"]["verdict"],
            ]
        )
    out = [
        tabulate(rows, headers=["objective", "target", "measured", "verdict"], tablefmt="github")
    ]
    reasons = [f"  {name}: {r['reason']}" for name, r in v.items() if r["verdict"] == "unknown"]
    if reasons:
        out.append("unknown because:\n" + "\n".join(reasons))
    if m.get("lost_writes"):
        ranges = [f"{a}-{b}" if a != b else str(a) for a, b in m["lost_ranges"]]
        if len(ranges) > 8:
            ranges = [*ranges[:4], f"... {len(ranges) - 6} more ...", *ranges[-2:]]
        out.append(
            f"lost writes: ids {', '.join(ranges)} ({m['holes']} holes); recovered (unknown but "
            f"present): {m['writes_recovered']}; unexpected: {m['unexpected_writes']}; "
            f"duplicated: {m['duplicated_writes']}"
        )
    brain = record.get("split_brain")
    if brain and brain.get("detected"):
        sides = "; ".join(
            f"{lineage}: {len(ids)} writes (ids {ids[0]}..{ids[-1]})"
            for lineage, ids in brain["conflicting_ids"].items()
        )
        out.append(
            f"SPLIT BRAIN: two databases acknowledged writes at once for {brain['window_s']:.3f}s "
            f"({brain['start_s']:.3f}s to {brain['end_s']:.3f}s into the drill): {sides}"
        )
    served = [
        f"{name} {phase.replace('_', ' ')}: "
        + ", ".join(f"site {site} {n}" for site, n in counts.items())
        for name, p in record["probes"].items()
        for phase, counts in (p.get("served_by") or {}).items()
    ]
    if served:
        out.append("served by: " + "; ".join(served))
    disruptions = record.get("disruptions") or []
    if len(disruptions) > 1:
        out.append(
            "disruptions: "
            + "; ".join(
                f"after step {d['step'] + 1} ({d['kind']}) "
                + (
                    "still down from the step before"
                    if d.get("down_already")
                    else f"{d['downtime_s']:.3f}s down"
                )
                for d in disruptions
            )
        )
    if m.get("replication_lag_peak_bytes") is not None:
        out.append(
            f"replication lag peak (RPO exposure before any failover): "
            f"{m['replication_lag_peak_bytes']:.0f} bytes, {m['replication_lag_peak_s']:.3f}s"
        )
    probe_rows = []
    for name, p in record["probes"].items():
        probe_rows.append(
            [
                name,
                p["kind"],
                f"{p['interval_s'] * 1000:.0f}ms",
                p["samples"],
                p["ok"],
                p["fail"],
                p["unknown"],
                f"{p['downtime_lower_s']:.3f}-{p['downtime_s']:.3f}s",
                "n/a" if p["latency_p99_ms"] is None else f"{p['latency_p99_ms']:.1f}ms",
            ]
        )
    out.append(
        tabulate(
            probe_rows,
            headers=[
                "probe",
                "kind",
                "every",
                "samples",
                "ok",
                "fail",
                "unknown",
                "downtime",
                "p99",
            ],
            tablefmt="github",
        )
    )
    phases = record.get("phases_s", {})
    if phases:
        out.append("wall time: " + ", ".join(f"{k} {v:.1f}s" for k, v in phases.items()))
    verdict = record["verdict"].upper()
    if record.get("aborted"):
        verdict += f": {record['aborted']}"
    if record.get("error"):
        verdict += f": {record['error']}"
    out.append(f"verdict: {verdict}")
    return "\n\n".join(out)
