"""The samples of one run record, and registries holding them (per run, for push and textfile)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from drills.checker import Overall, Verdict
from drills.metrics.spec import METRICS, SPECS
from drills.quarters import parse_time
from drills.records import KeyFrom, RunRecord, SigningKey, read_runs
from drills.records.model import Measurements, ObjectivesRecord

VERDICTS = tuple(Overall)
OBJECTIVES = ("rto", "rpo", "availability", "split_brain", "response", "recovery")

# record figure -> metric, for `measurements` and `objectives`
_MEASUREMENTS: tuple[tuple[Callable[[Measurements], float | None], str], ...] = (
    (lambda m: m.rto_s, "drills_rto_seconds"),
    (lambda m: m.rpo_s, "drills_rpo_seconds"),
    (lambda m: m.downtime_s, "drills_downtime_seconds"),
    (lambda m: m.lost_writes, "drills_lost_writes"),
    (lambda m: m.availability, "drills_availability_ratio"),
    (lambda m: m.error_budget_s, "drills_error_budget_seconds"),
    (lambda m: m.error_budget_share, "drills_error_budget_used_ratio"),
    (lambda m: m.probe_interval_s, "drills_probe_interval_seconds"),
    (lambda m: m.write_interval_s, "drills_write_interval_seconds"),
)
_OBJECTIVES: tuple[tuple[Callable[[ObjectivesRecord], float], str], ...] = (
    (lambda o: o.rto_s, "drills_objective_rto_seconds"),
    (lambda o: o.rpo_s, "drills_objective_rpo_seconds"),
    (lambda o: o.availability, "drills_objective_availability_ratio"),
)

_PROBE_FIGURES = {
    "rto": "drills_probe_rto_seconds",
    "availability": "drills_probe_availability_ratio",
}

Sample = tuple[str, float, dict[str, str]]


class Families:
    """Metric families filled sample by sample, yielded in `SPECS` order, empty ones left out."""

    def __init__(self) -> None:
        self._by_name: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}

    def add(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        spec = METRICS[name]
        family = self._by_name.get(name)
        if family is None:
            if spec.kind == "counter":
                family = CounterMetricFamily(name, spec.help, labels=spec.labels)
            else:
                family = GaugeMetricFamily(name, spec.help, labels=spec.labels)
            self._by_name[name] = family
        given = labels or {}
        family.add_metric([given[label] for label in spec.labels], value)

    def extend(self, samples: Iterable[Sample]) -> None:
        for name, value, labels in samples:
            self.add(name, value, labels)

    def families(self) -> list[Metric]:
        return [self._by_name[s.name] for s in SPECS if s.name in self._by_name]


class _Fixed:
    """A collector of families computed once (a per-run registry)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def registry_of(samples: Iterable[Sample]) -> CollectorRegistry:
    families = Families()
    families.extend(samples)
    registry = CollectorRegistry()
    registry.register(_Fixed(families.families()))
    return registry


def _timestamp(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_time(value).timestamp()
    except ValueError:
        return None


def end_of(record: RunRecord) -> float | None:
    """When the run ended (`finished_at`, else `started_at`), Unix time."""
    return _timestamp(record.finished_at) or _timestamp(record.started_at)


def run_samples(record: RunRecord) -> list[Sample]:
    """Every per-run sample of `record` except the last success."""
    scenario = record.scenario.name
    only = {"scenario": scenario}
    samples: list[Sample] = []
    for candidate in VERDICTS:
        hot = 1.0 if record.verdict is candidate else 0.0
        samples.append(("drills_verdict", hot, {"scenario": scenario, "verdict": candidate.value}))
    for objective in OBJECTIVES:
        judged = record.verdicts.get(objective)
        if judged is not None and judged.verdict is not Verdict.UNKNOWN:
            met = 1.0 if judged.verdict is Verdict.MET else 0.0
            labels = {"scenario": scenario, "objective": objective}
            samples.append(("drills_objective_met", met, labels))
    samples += _probe_samples(record)
    for measured, name in _MEASUREMENTS:
        value = measured(record.measurements)
        if value is not None:
            samples.append((name, float(value), only))
    for objective_of, name in _OBJECTIVES:
        samples.append((name, float(objective_of(record.objectives)), only))
    split = record.verdicts.get("split_brain")
    if split is not None and split.measured is not None:
        samples.append(("drills_split_brain_writes", float(split.measured), only))
    response = record.verdicts.get("response")  # with an incident level (docs/game-days.md)
    if response is not None and response.measured is not None:
        samples.append(("drills_response_seconds", float(response.measured), only))
    for stamp, name in (
        (_timestamp(record.started_at), "drills_run_start_timestamp_seconds"),
        (_timestamp(record.finished_at), "drills_run_end_timestamp_seconds"),
    ):
        if stamp is not None:
            samples.append((name, stamp, only))
    info = {
        "scenario": scenario,
        "run_id": record.run_id,
        "drills_version": (record.host.drills_version if record.host else None) or "",
    }
    samples.append(("drills_run_info", 1.0, info))
    return samples


def _probe_samples(record: RunRecord) -> list[Sample]:
    """Each probe's downtime, and the verdicts and figures of probes' own objectives."""
    scenario = record.scenario.name
    samples: list[Sample] = [
        ("drills_probe_downtime_seconds", float(p.downtime_s), {"scenario": scenario, "probe": n})
        for n, p in record.probes.items()
    ]
    for key, judged in record.verdicts.items():
        objective, _, probe = key.partition(":")
        if not probe:
            continue
        labels = {"scenario": scenario, "probe": probe}
        if judged.verdict is not Verdict.UNKNOWN:
            met = 1.0 if judged.verdict is Verdict.MET else 0.0
            samples.append(("drills_probe_objective_met", met, {**labels, "objective": objective}))
        if judged.measured is not None and objective in _PROBE_FIGURES:
            samples.append((_PROBE_FIGURES[objective], float(judged.measured), labels))
    return samples


def latest_success(record: RunRecord, known: float | None) -> float | None:
    """The later of `known` and this run's end when it passed."""
    found = [known, end_of(record) if record.passed else None]
    times = [t for t in found if t is not None]
    return max(times) if times else None


def success_sample(scenario: str, when: float) -> Sample:
    return ("drills_last_success_timestamp_seconds", when, {"scenario": scenario})


def head_samples(record: RunRecord) -> list[Sample]:
    """The chain head as of this run: its own record's sequence number (absent if unchained)."""
    if record.chain is None:
        return []
    return [("drills_chain_head_sequence", float(record.chain.seq), {})]


def registry_for(record: RunRecord, last_success: float | None = None) -> CollectorRegistry:
    """A registry holding the metrics of one run record.

    `drills_last_success_timestamp_seconds` is the end of this run when it passed, or
    `last_success` (the latest passing run known from elsewhere, e.g. the records directory)
    when that is later; absent when neither is known.
    """
    samples = run_samples(record) + head_samples(record)
    when = latest_success(record, last_success)
    if when is not None:
        samples.append(success_sample(record.scenario.name, when))
    return registry_of(samples)


def last_success_in(
    directory: Path, scenario: str, key: SigningKey | KeyFrom | None = KeyFrom.ENVIRONMENT
) -> float | None:
    """End of the latest passing run of `scenario` among the records of `directory` that pass
    verification (signatures checked with `key`)."""
    runs, _ = read_runs(directory, left_out=[], key=key)
    ends = [end_of(r.record) for r in runs if r.scenario == scenario and r.passed]
    found = [t for t in ends if t is not None]
    return max(found) if found else None
