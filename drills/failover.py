"""A failover by an HA manager, measured in parts: pure functions of the history.

Engineering guide, section 1: fault -> leader lost -> new leader elected -> first ok through
the balancer. The points come from a `patroni` probe's samples (tags `primaries`, the members
answering as a running primary, and `leader_key`) and the service probe:

- fault: the start of the first disruptive step;
- leader lost: the first cluster sample after the fault in which the leader before the fault no
  longer answered as primary (for a node lost, at once; for a leader cut from the DCS, when it
  demoted itself; for a switchover, when it stepped down);
- leader key expired: the first sample after the fault in which a member found no leader key
  in the DCS (it may pass unseen when a replica takes the key within one probe interval);
- new leader elected: the first sample after the fault naming another primary, or, when none
  ever did, the old leader back as the only primary (restarted in place);
- service recovered: the RTO's end, the first ok of the service probe that stayed ok.

A point is the completion of the sample that saw it: by then it had happened, at most one
probe interval earlier. Two members answering as primary in one sample is split brain evidence
(`two_primaries`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from drills.downtime import Outage
from drills.history import History, Op, ProbeInfo

CLUSTER_PROBE_KIND = "patroni"


@dataclass(frozen=True)
class ClusterSample:
    """What one cluster sample saw."""

    invoke_ns: int
    complete_ns: int
    primaries: tuple[str, ...]
    leader_key_missing: bool


@dataclass(frozen=True)
class Parts:
    """The RTO in parts; they add up to it when every point was seen in order."""

    detection_s: float | None  # fault -> leader lost
    election_s: float | None  # leader lost (or the fault) -> new leader elected
    reconnect_s: float | None  # new leader elected -> service recovered


@dataclass(frozen=True)
class Failover:
    probe: str
    interval_s: float
    fault_ns: int | None
    leader_before: str | None
    leader_after: str | None
    service_last_ok_ns: int | None
    leader_lost_ns: int | None
    leader_key_expired_ns: int | None
    leader_elected_ns: int | None
    service_recovered_ns: int | None
    parts: Parts


@dataclass(frozen=True)
class TwoPrimaries:
    """Samples in which several members answered as primary: from the first's due time to
    the last's completion."""

    start_ns: int
    end_ns: int
    members: list[str]
    samples: int


def cluster_probe(history: History) -> ProbeInfo | None:
    """The drill's first `patroni` probe, if it has one."""
    return next((p for p in history.probes if p.kind == CLUSTER_PROBE_KIND), None)


def _sample(op: Op) -> ClusterSample | None:
    tags = op.tags or {}
    if op.crashed or "primaries" not in tags:
        return None  # a timed-out or crashed sample saw nothing
    names = tuple(sorted(n for n in tags["primaries"].split(",") if n))
    return ClusterSample(op.invoke_ns, op.complete_ns, names, tags.get("leader_key") == "none")


def cluster_samples(history: History, probe: str) -> list[ClusterSample]:
    """The probe's samples that saw the cluster, in completion order."""
    found = [s for s in map(_sample, history.ops_of(probe)) if s is not None]
    return sorted(found, key=lambda s: s.complete_ns)


def leader_before(samples: list[ClusterSample], fault_ns: int | None) -> str | None:
    """The only primary of the last sample before the fault that had exactly one."""
    before = [s for s in samples if fault_ns is None or s.complete_ns <= fault_ns]
    return next((s.primaries[0] for s in reversed(before) if len(s.primaries) == 1), None)


def _first(
    samples: list[ClusterSample], seen: Callable[[ClusterSample], bool]
) -> ClusterSample | None:
    return next((s for s in samples if seen(s)), None)


def _elected(
    after: list[ClusterSample], old: str | None
) -> tuple[ClusterSample | None, str | None]:
    """The first sample naming a primary other than `old`, and that primary; else the old
    leader back as the only primary after it was lost."""
    for sample in after:
        others = [name for name in sample.primaries if name != old]
        if others:
            return sample, others[0]
    lost = _first(after, lambda s: old not in s.primaries)
    if lost is None or old is None:
        return None, None
    back = _first(
        [s for s in after if s.complete_ns > lost.complete_ns], lambda s: s.primaries == (old,)
    )
    return back, (old if back is not None else None)


def _span_s(start_ns: int | None, end_ns: int | None) -> float | None:
    if start_ns is None or end_ns is None:
        return None
    return max(0.0, (end_ns - start_ns) / 1e9)


def parts(
    fault_ns: int | None, lost_ns: int | None, elected_ns: int | None, recovered_ns: int | None
) -> Parts:
    """Consecutive differences; a leader lost only after the new one was elected (both
    answered as primary for a while) leaves detection unmeasured and election from the fault."""
    if lost_ns is not None and elected_ns is not None and lost_ns > elected_ns:
        lost_ns = None
    return Parts(
        detection_s=_span_s(fault_ns, lost_ns),
        election_s=_span_s(lost_ns if lost_ns is not None else fault_ns, elected_ns),
        reconnect_s=_span_s(elected_ns, recovered_ns),
    )


def last_ok_before_outage(service_outages: list[Outage], fault_ns: int) -> int | None:
    """Start of the upper bound of the service's outage that ran at or after the fault."""
    for outage in service_outages:
        if outage.end_ns is None or outage.end_ns > fault_ns:
            return outage.last_ok_ns
    return None


def measure(
    probe: ProbeInfo,
    samples: list[ClusterSample],
    fault_ns: int | None,
    service_outages: list[Outage],
    service_recovered_ns: int | None,
) -> Failover:
    """The failover's points and parts, from cluster probe `probe`'s samples and the service."""
    old = leader_before(samples, fault_ns)
    after = [s for s in samples if fault_ns is not None and s.invoke_ns >= fault_ns]
    lost = _first(after, lambda s: (old not in s.primaries) if old else not s.primaries)
    expired = _first(after, lambda s: s.leader_key_missing)
    elected, new = _elected(after, old)
    lost_ns = lost.complete_ns if lost else None
    elected_ns = elected.complete_ns if elected else None
    recovered = None
    if fault_ns is not None and service_recovered_ns is not None:
        recovered = max(fault_ns, service_recovered_ns)  # never down: recovered at once
    return Failover(
        probe=probe.name,
        interval_s=probe.interval_s,
        fault_ns=fault_ns,
        leader_before=old,
        leader_after=new,
        service_last_ok_ns=(
            last_ok_before_outage(service_outages, fault_ns) if fault_ns is not None else None
        ),
        leader_lost_ns=lost_ns,
        leader_key_expired_ns=expired.complete_ns if expired else None,
        leader_elected_ns=elected_ns,
        service_recovered_ns=recovered,
        parts=parts(fault_ns, lost_ns, elected_ns, recovered),
    )


def two_primaries(samples: list[ClusterSample]) -> TwoPrimaries | None:
    """Several members answering as primary in one sample, or None."""
    both = [s for s in samples if len(s.primaries) > 1]
    if not both:
        return None
    members = sorted({name for s in both for name in s.primaries})
    start = min(s.invoke_ns for s in both)
    return TwoPrimaries(start, max(s.complete_ns for s in both), members, len(both))
