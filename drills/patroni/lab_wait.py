"""When the `patroni` lab is ready: the cluster has a leader, every replica streams from it,
with `synchronous_mode` Patroni has named a synchronous standby (until then no commit waits for
a replica), and HAProxy sends writes to the leader (and reads to a replica). Bounded; a lab
that does not get there says what it saw and ends with its servers' last log lines."""

from __future__ import annotations

import time

import psycopg

from drills.errors import LabError, TargetError
from drills.patroni.lab_nodes import EtcdNode, PatroniMember
from drills.patroni.rest import ClusterView, PatroniRest

READY_TIMEOUT_S = 30.0
SYNC_STANDBY = "sync_standby"  # its role in /cluster


def _streaming(dsn: str) -> int:
    with psycopg.connect(dsn, connect_timeout=2) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        ).fetchone()
    return int(str(row[0])) if row else 0


def _answers(dsn: str, primary: bool) -> bool:
    with psycopg.connect(dsn, connect_timeout=2) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return row is not None and row[0] is (not primary)


def _check(
    view: ClusterView,
    members: dict[str, PatroniMember],
    dsns: tuple[str, str | None],
    synchronous: bool = False,
) -> str:
    """What is still missing (empty when the lab is ready)."""
    leader = view.leader
    if leader is None or leader.state != "running":
        return "no running leader yet"
    missing = sorted(set(members) - {m.name for m in view.members})
    if missing:
        return f"leader {leader.name}; not yet in the cluster: {', '.join(missing)}"
    replicas = len(members) - 1
    streaming = _streaming(members[leader.name].dsn)
    if streaming < replicas:
        states = ", ".join(f"{m.name} {m.state}" for m in view.replicas)
        return f"leader {leader.name}; {streaming} of {replicas} replicas streaming ({states})"
    if synchronous and replicas and not any(m.role == SYNC_STANDBY for m in view.members):
        roles = ", ".join(f"{m.name} {m.role}" for m in view.members)
        return f"leader {leader.name}; no synchronous standby yet ({roles})"
    if not _answers(dsns[0], primary=True):
        return "HAProxy's write port does not reach the leader yet"
    if dsns[1] is not None and not _answers(dsns[1], primary=False):
        return "HAProxy's read port does not reach a replica yet"
    return ""


def _tails(members: list[PatroniMember], etcd: EtcdNode) -> str:
    return "; ".join(f"{node.name}: {node.log_tail(2)}" for node in [*members, etcd])


def wait_cluster(
    rest: PatroniRest,
    members: list[PatroniMember],
    dsns: tuple[str, str | None],
    etcd: EtcdNode,
    timeout_s: float = READY_TIMEOUT_S,
    synchronous: bool = False,
) -> str:
    """Wait until the lab is ready; return the leader's name."""
    by_name = {m.name: m for m in members}
    deadline = time.monotonic() + timeout_s
    seen = "no member answered"
    while time.monotonic() < deadline:
        for member in members:
            member.wait_ready()  # a member whose Patroni exited fails the lab now
        try:
            view = rest.cluster()
            seen = _check(view, by_name, dsns, synchronous)
        except (TargetError, psycopg.Error) as exc:
            seen = " ".join(str(exc).split())[:200]
        else:
            if not seen:
                leader = view.leader
                assert leader is not None
                return leader.name
        time.sleep(0.1)
    raise LabError(
        f"the Patroni cluster was not ready in {timeout_s:g}s ({seen}); last log lines: "
        + _tails(members, etcd)
    )
