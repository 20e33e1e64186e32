"""Charts for drill reports (matplotlib, headless): PNG bytes, embedded or written beside.

Text from records (step descriptions, probe and scenario names) is drawn as it is: `plain`
keeps matplotlib from reading `$...$` in it as mathtext (which draws something else, or fails
the whole report on a malformed expression)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # headless; chosen before pyplot is imported

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from drills.checker import is_up
from drills.history import History, ProbeInfo
from drills.records.model import Measurements, RunRecord, StepRecord

UP, DOWN, FAULT, LOSS, RTO = "#2e9d4f", "#d1342f", "#f2b84b", "#7b3fb5", "#1f5fbf"
ACTION = "#8fa8c8"

# A fault lasts from its step until the first later step of one of these kinds (else to the
# end of the drill, when the harness reverted it).
RESTORED = {"restore", "restore-config"}
ENDED_BY = {
    "pause": {"resume", "unpause", "restart"},
    "kill": {"restart", "promote", "start", "rejoin"},
    "restart": set(),
    "stop": {"start"},
    "disconnect": {"connect"},
    "link-down": {"heal"},
    "blackhole": {"heal"},
    "delay": {"heal"},
    "bandwidth": {"heal"},
    "reset-peer": {"heal"},
    "partition": {"heal"},
    "isolate": {"heal"},
    "site-down": {"rejoin"},
    "site-isolate": {"heal"},
    "sql": RESTORED,
    "delete-config": RESTORED,
    "corrupt": RESTORED,
    "lose-disk": RESTORED,
}
# Actions are shaded (in another colour) over their own step: what people and the harness did.
ACTIONS = {
    *("promote", "rejoin", "restore", "restore-config", "backup", "manual"),
    *("switchover", "failover", "pause-cluster", "resume-cluster", "exec"),
}


@dataclass
class Samples:
    probe: str
    times: list[float]  # seconds since the drill's start
    up: list[bool]
    lost: list[bool] | None = None  # acknowledged writes the final read did not find


@dataclass
class Interval:
    start: float
    end: float
    label: str
    action: bool = False  # an action over its own step, not a fault in place


def plain(text: str) -> str:
    """`text` as matplotlib draws it literally."""
    return text.replace("$", r"\$")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def fault_intervals(timeline: Sequence[StepRecord], end: float) -> list[Interval]:
    """Each fault from its step until what ended it, and each action over its own step."""
    intervals = []
    for index, step in enumerate(timeline):
        if step.kind in ACTIONS and step.start_s is not None:
            stop = step.end_s if step.end_s is not None else step.start_s
            intervals.append(Interval(step.start_s, stop, step.description, action=True))
        if step.kind not in ENDED_BY or step.start_s is None:
            continue
        stop = end
        for later in timeline[index + 1 :]:
            if later.kind in ENDED_BY[step.kind] and later.start_s is not None:
                stop = later.start_s
                break
        if step.kind == "restart" and step.end_s is not None:
            stop = step.end_s
        intervals.append(Interval(step.start_s, stop, step.description))
    return intervals


def drill_timeline(
    samples: list[Samples],
    faults: list[Interval],
    rto: Interval | None,
    loss: Interval | None,
    title: str,
) -> bytes:
    """Each probe's samples (green up, red down) over time, faults shaded and labelled, the RTO
    and the data-loss window marked."""
    rows = max(1, len(samples))
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.55 * rows))
    for row, probe in enumerate(samples):
        colors = [UP if ok else DOWN for ok in probe.up]
        ax.scatter(probe.times, [row] * len(probe.times), c=colors, marker="|", s=160, lw=1.2)
        lost = [t for t, gone in zip(probe.times, probe.lost or [], strict=False) if gone]
        if lost:  # acknowledged, then not found: marked on the writes' own lane
            ax.scatter(lost, [row] * len(lost), c=LOSS, marker="x", s=40, lw=1.2, zorder=3)
    for number, fault in enumerate(faults):
        color, text = (ACTION, "#34506f") if fault.action else (FAULT, "#8a5a00")
        ax.axvspan(fault.start, fault.end, color=color, alpha=0.25, lw=0)
        ax.annotate(
            plain(fault.label),
            (fault.start, rows - 0.35 + 0.28 * (number % 2)),
            fontsize=7,
            color=text,
        )
    if rto is not None:
        ax.annotate(
            "",
            xy=(rto.end, -0.75),
            xytext=(rto.start, -0.75),
            arrowprops={"arrowstyle": "<->", "color": RTO},
        )
        ax.text((rto.start + rto.end) / 2, -0.68, rto.label, color=RTO, fontsize=8, ha="center")
    if loss is not None:
        ax.axvspan(loss.start, loss.end, ymin=0, ymax=0.08, color=LOSS, alpha=0.8, lw=0)
        ax.text(loss.end, -1.15, loss.label, color=LOSS, fontsize=8, ha="right")
    ax.set_yticks(range(rows), [plain(s.probe) for s in samples])
    ax.set_ylim(-1.4, rows + 0.1)
    ax.set_xlabel("seconds since the drill started")
    ax.set_title(plain(title), fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def record_timeline(record: RunRecord, history: History, title: str) -> bytes:
    """`drill_timeline` of a run from its record and its history."""
    ends = [p.stopped_s for p in record.probes.values() if p.stopped_s is not None]
    end = max(ends) if ends else 0.0
    m = record.measurements
    faults = fault_intervals(record.timeline, end)
    samples = timeline_samples(record, history)
    return drill_timeline(samples, faults, _rto_interval(m), _loss_interval(m), title)


def timeline_samples(record: RunRecord, history: History) -> list[Samples]:
    """Each probe's counted samples, up as the checker judged them; the write probe's lost
    writes marked."""
    anchor = history.clock.mono_ns
    samples = []
    for name, probe in record.probes.items():
        ops = [op for op in history.ops_of(name) if op.counted]  # as the checker judged them
        # Up as the checker counts it, at the `slow` threshold the record was judged with.
        info = ProbeInfo(name, probe.kind, probe.interval_s, probe.timeout_s, probe.slow_s, 0, 0)
        times = [(op.invoke_ns - anchor) / 1e9 for op in ops]
        lost = set(record.measurements.lost_write_ids or [])
        gone = [op.seq in lost for op in ops] if name == record.check.write_probe else None
        samples.append(Samples(name, times, [is_up(op, info) for op in ops], gone))
    return samples


def _rto_interval(m: Measurements) -> Interval | None:
    if m.rto_s is None or m.disruption_start_s is None:
        return None
    start = m.disruption_start_s
    return Interval(start, start + m.rto_s, f"RTO {m.rto_s:.3f}s")


def _loss_interval(m: Measurements) -> Interval | None:
    if not m.rpo_s or m.recovery_point_s is None:
        return None
    start = m.recovery_point_s
    return Interval(start, start + m.rpo_s, f"data-loss window {m.rpo_s:.3f}s")


MAX_TICKS = 24  # labels under a chart of runs or quarters


def against_objective(
    series: dict[str, list[tuple[str, float]]], objectives: dict[str, float], what: str
) -> bytes:
    """One line per scenario over labelled points (runs or quarters), objective as a dashed
    line of the same colour."""
    fig, ax = plt.subplots(figsize=(10, 3.4))
    place: dict[str, int] = {}
    for points in series.values():
        for label, _ in points:
            place.setdefault(label, len(place))
    labels = list(place)
    for index, (scenario, points) in enumerate(sorted(series.items())):
        color = f"C{index % 10}"
        xs = [place[label] for label, _ in points]
        ax.plot(xs, [value for _, value in points], marker="o", color=color, label=plain(scenario))
        if scenario in objectives:
            ax.axhline(objectives[scenario], color=color, ls="--", lw=1, alpha=0.7)
    step = max(1, -(-len(labels) // MAX_TICKS))  # hundreds of labels are a black smear
    ticks = range(0, len(labels), step)
    ax.set_xticks(
        ticks, [plain(labels[i]) for i in ticks], fontsize=7, rotation=20 if len(ticks) > 6 else 0
    )
    # Figures are often 1,000 times under their objective: on a linear scale a 1 s and a 20 s
    # RTO both sit on the zero line. Symmetric log keeps 0 (no data lost) on the chart.
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylabel(f"{what} (s, log scale)")
    ax.set_title(f"{what} per scenario; dashed: objective", fontsize=10)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    return _png(fig)


def error_budget(used_s: float, budget_s: float, title: str) -> bytes:
    fig, ax = plt.subplots(figsize=(10, 1.4))
    ax.barh([0], [budget_s], color="#dddddd", label="budget")
    ax.barh([0], [min(used_s, budget_s)], color=UP if used_s <= budget_s else DOWN, label="used")
    if used_s > budget_s:
        ax.barh([0], [used_s - budget_s], left=[budget_s], color=DOWN)
    ax.set_yticks([])
    ax.set_xlabel("seconds")
    ax.set_title(plain(title), fontsize=10)
    return _png(fig)
