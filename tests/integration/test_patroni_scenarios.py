"""The shipped Patroni scenarios (switchover, partition, sync) end to end with real etcd,
Patroni, HAProxy and PostgreSQL, each watched by the test's own poller of the members' REST
APIs; and a split brain forced on purpose (maintenance mode, then the replica promoted with
pg_promote() behind Patroni's back) that the drill must catch. Each drill runs once; the
`sandbox` fixture checks that nothing (process or file) is left afterwards."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import REPO, Run, run_drills
from tests.patroni_cluster import lab_members

pytestmark = [pytest.mark.postgres, pytest.mark.patroni]
SCENARIOS = REPO / "scenarios"
POLL_S = 0.05
PRIMARY = ("master", "primary")
TTL_S, LOOP_WAIT_S = 10, 2  # the shipped scenarios' Patroni settings
WATCH_LIMIT_S = 120  # the poller stops by itself after this, whatever happens


@dataclass
class Seen:
    """One poll of every member: its own /patroni role and state (None: no answer), and the
    roles /cluster gave (the first member that answered)."""

    at_ns: int  # time.monotonic_ns(): the same clock as the drill's history
    roles: dict[str, str | None]
    states: dict[str, str | None]
    cluster_roles: dict[str, str]

    def primaries(self) -> set[str]:
        return {
            n for n, role in self.roles.items() if role in PRIMARY and self.states[n] == "running"
        }


@dataclass
class RestWatch:
    """The test's own view of the cluster while a drill runs (bounded in time): it finds the
    lab's members in the sandbox and polls each one's REST API."""

    sandbox: Path
    seen: list[Seen] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def members(self) -> dict[str, str]:
        """Member name -> REST URL."""
        return lab_members(self.sandbox)

    def poll(self, members: dict[str, str]) -> Seen:
        roles: dict[str, str | None] = {}
        states: dict[str, str | None] = {}
        cluster: dict[str, str] = {}
        for name, url in members.items():
            roles[name] = states[name] = None
            try:
                own = requests.get(url + "/patroni", timeout=0.3).json()
                roles[name], states[name] = own.get("role"), own.get("state")
                if not cluster:
                    answer = requests.get(url + "/cluster", timeout=0.3).json()
                    cluster = {m["name"]: m["role"] for m in answer.get("members", [])}
            except (requests.RequestException, ValueError, AttributeError):
                continue
        return Seen(time.monotonic_ns(), roles, states, cluster)

    def run(self) -> None:
        members: dict[str, str] = {}
        deadline = time.monotonic() + WATCH_LIMIT_S
        while not self.stop.is_set() and time.monotonic() < deadline:
            members = members if len(members) > 1 else self.members()
            if len(members) > 1:
                self.seen.append(self.poll(members))
            time.sleep(POLL_S)

    def first(self, after_ns: int, test: Any) -> Seen | None:
        return next((s for s in self.seen if s.at_ns >= after_ns and test(s)), None)


@contextmanager
def watching(sandbox: Path) -> Iterator[RestWatch]:
    watch = RestWatch(sandbox)
    poller = threading.Thread(target=watch.run, daemon=True)
    poller.start()
    try:
        yield watch
    finally:
        watch.stop.set()
        poller.join(timeout=5)


def drill(scenario: Path, sandbox: Path, reports: Path) -> Run:
    return run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)


def history(run: Run) -> list[dict[str, Any]]:
    path = run.record_path.parent / run.record()["history"]
    return [json.loads(line) for line in path.read_text().splitlines()]


def step_start_ns(run: Run, kind: str) -> int:
    return next(e["start_ns"] for e in history(run) if e["type"] == "step" and e["kind"] == kind)


def assert_passed(run: Run) -> dict[str, Any]:
    assert run.returncode == 0, run.stdout + run.stderr
    record = run.record()
    assert record["verdict"] == "pass", record["verdicts"]
    assert "promote" not in {s["kind"] for s in record["timeline"]}
    assert record["verdicts"]["split_brain"]["verdict"] == "met"
    assert record["split_brain"] == {"detected": False}
    assert record["lab"]["settings"]["ttl"] == TTL_S
    assert record["lab"]["settings"]["loop_wait"] == LOOP_WAIT_S
    return record


def test_switchover_scenario_measures_a_short_write_outage(sandbox: Path, tmp_path: Path) -> None:
    run = drill(SCENARIOS / "patroni-switchover.yaml", sandbox, tmp_path)
    record = assert_passed(run)
    switchover = next(s for s in record["timeline"] if s["kind"] == "switchover")
    old, new = record["failover"]["leader_before"], record["failover"]["leader_after"]
    assert old and new and old != new, record["failover"]
    assert switchover["detail"].startswith(f"leader {old} -> {new} "), switchover
    assert record["measurements"]["lost_writes"] == 0
    assert 0 < record["measurements"]["rto_s"] < 10, "a switchover needs no leader key expiry"


def test_partition_scenario_demotes_the_old_leader_within_ttl(
    sandbox: Path, tmp_path: Path
) -> None:
    with watching(sandbox) as watch:
        run = drill(SCENARIOS / "patroni-partition.yaml", sandbox, tmp_path)
    record = assert_passed(run)
    # The lab gives a1 a head start: it leads when the drill starts, so etcd-a is the leader's.
    assert record["lab"]["leader_at_start"] == "a1"
    assert record["failover"]["leader_before"] == "a1"
    assert record["failover"]["leader_after"] == "b1"
    cut = step_start_ns(run, "blackhole")
    before = [s for s in watch.seen if s.at_ns < cut]
    assert before and before[-1].primaries() == {"a1"}, before[-1:]
    # Ground truth: a1 itself says it is no longer the primary within ttl (+ one loop_wait).
    demoted = watch.first(cut, lambda s: s.roles["a1"] is not None and s.roles["a1"] not in PRIMARY)
    assert demoted is not None, "a1 never answered as demoted"
    assert (demoted.at_ns - cut) / 1e9 <= TTL_S + LOOP_WAIT_S, (demoted.at_ns - cut) / 1e9
    elected = watch.first(cut, lambda s: "b1" in s.primaries())
    assert elected is not None and elected.at_ns > demoted.at_ns, "b1 led before a1 demoted"
    assert all(len(s.primaries()) <= 1 for s in watch.seen), "two primaries seen by the test"


def test_sync_scenario_loses_no_acknowledged_write(sandbox: Path, tmp_path: Path) -> None:
    with watching(sandbox) as watch:
        run = drill(SCENARIOS / "patroni-sync.yaml", sandbox, tmp_path)
    record = assert_passed(run)
    assert record["lab"]["settings"]["synchronous_mode"] is True
    kill = step_start_ns(run, "kill")
    # Synchronous mode was really on: Patroni named the replica its synchronous standby.
    synced = [
        s for s in watch.seen if s.at_ns < kill and "sync_standby" in s.cluster_roles.values()
    ]
    assert synced, f"no sync_standby before the kill: {[s.cluster_roles for s in watch.seen[-3:]]}"
    measured = record["measurements"]
    assert measured["writes_acked"] > 50, measured
    assert measured["lost_writes"] == 0, measured["lost_write_ids"]
    assert record["verdicts"]["rpo"]["verdict"] == "met"


FORCED = """
version: 1
name: patroni-forced-split-brain
description: >
  Split brain on purpose: maintenance mode, then the replica promoted with pg_promote()
  behind Patroni's back while clients still write to the old leader.
objectives: {rto: 30m, rpo: 5m, availability: 99.99%}
lab: {kind: patroni, members: {a: 1, b: 1}, ttl: 10, loop_wait: 2, retry_timeout: 4}
targets:
  cluster: {lab: cluster}
probes:
  writes: {kind: postgres-write, dsn: "${lab.dsn}", interval: 20ms, timeout: 500ms}
  writes-a1: {kind: postgres-write, dsn: "${lab.a1.dsn}", interval: 50ms, timeout: 500ms}
  # b1 is a standby until the exec step: its writes fail until then (after `writes`, which
  # creates the table that b1 receives from a1)
  writes-b1: {kind: postgres-write, dsn: "${lab.b1.dsn}", interval: 50ms, timeout: 500ms}
  cluster: {kind: patroni, urls: "${lab.rest_urls}", interval: 200ms}
service_probe: writes
write_probe: writes
steps:
  - wait: 1s
  - pause-cluster: cluster      # undone at the end of the drill: no resume-cluster here
  - exec: psql "$DRILLS_LAB_B1_DSN" -Atc "SELECT pg_promote()"
  - wait: 3s
"""


def lineages_acked(events: list[dict[str, Any]], probe: str, after_ns: int) -> set[str]:
    return {
        f"{e['tags']['db']}/{e['tags']['timeline']}"
        for e in events
        if e["type"] == "op"
        and e["probe"] == probe
        and e["outcome"] == "ok"
        and e["invoke_ns"] > after_ns
        and (e.get("tags") or {}).get("db")
    }


def test_a_split_brain_forced_behind_patronis_back_is_caught(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "forced-split-brain.yaml"
    scenario.write_text(FORCED)
    reports = tmp_path / "runs"
    run = drill(scenario, sandbox, reports)
    assert run.returncode == 1, run.stdout + run.stderr
    record = run.record()
    assert record["lab"]["leader_at_start"] == "a1"
    assert record["verdict"] == "fail"
    assert record["verdicts"]["split_brain"]["verdict"] == "missed"
    brain = record["split_brain"]
    assert brain["detected"] is True
    assert brain["two_primaries"]["members"] == ["a1", "b1"], brain
    # Both lineages acknowledged writes once b1 was promoted: a1's clients and b1's.
    events = history(run)
    promoted = next(e["end_ns"] for e in events if e["type"] == "step" and e["kind"] == "exec")
    old, new = (
        lineages_acked(events, "writes-a1", promoted),
        lineages_acked(events, "writes-b1", promoted),
    )
    assert len(old) == 1 and len(new) == 1 and old != new, (old, new)
    assert "SPLIT BRAIN" in run.stdout
    # The pause is undone at the end (Patroni out of maintenance mode), then the lab removed;
    # the sandbox fixture checks that nothing is left.
    assert "reverted: resume cluster" in run.stderr and "removing lab" in run.stderr
