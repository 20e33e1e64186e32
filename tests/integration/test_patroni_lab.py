"""The `patroni` lab with real etcd, Patroni, HAProxy and PostgreSQL: the failover scenario end
to end against the test's own view of the election, a shared lab for what its nodes can do,
and nothing left behind after a normal end, SIGTERM, or SIGKILL + `drills recover`."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import yaml

from drills.labs.base import LabHandle
from drills.patroni.lab import PatroniLab
from drills.patroni.lab_config import PatroniLabConfig
from drills.patroni.lab_nodes import PatroniMember
from drills.proctree import alive, state
from tests.conftest import (
    REPO,
    drills_env,
    leftover_processes,
    run_drills,
    sigkill_drill_at,
    signal_drill_at,
)
from tests.patroni_cluster import lab_members

pytestmark = [pytest.mark.postgres, pytest.mark.patroni]
SCENARIO = REPO / "scenarios" / "patroni-failover.yaml"
POLL_S = 0.05
PRIMARY = ("master", "primary")  # a member's own role in GET /patroni


@dataclass
class Sample:
    at: float  # monotonic
    leader: str | None  # as the cluster says
    answering: set[str]  # members whose REST API answered


@dataclass
class ElectionWatch:
    """The test's own view of the cluster during a drill: it finds the lab's members in the
    sandbox and polls their REST APIs."""

    sandbox: Path
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def members(self) -> dict[str, str]:
        """REST URL -> member name."""
        return {url: name for name, url in lab_members(self.sandbox).items()}

    def sample(self, members: dict[str, str]) -> Sample:
        """Each member's own answer (GET /patroni): the leader is the member that answers as
        a running primary, as the `patroni` probe defines it."""
        leader, answering = None, set()
        for url, name in members.items():
            try:
                answer = requests.get(url + "/patroni", timeout=0.3).json()
            except (requests.RequestException, ValueError):
                continue
            answering.add(name)
            if answer.get("role") in PRIMARY and answer.get("state") == "running":
                leader = leader or name
        return Sample(time.monotonic(), leader, answering)

    def run(self) -> None:
        members: dict[str, str] = {}
        while not self.stop.is_set():
            members = members if len(members) > 1 else self.members()
            if members:
                self.samples.append(self.sample(members))
            time.sleep(POLL_S)

    def elected_at(self) -> float:
        """When a member other than the first leader first answered as primary."""
        first = next(s.leader for s in self.samples if s.leader)
        return next(s.at for s in self.samples if s.leader not in (first, None))

    def election_s(self) -> float:
        """From the first sample where the first leader's REST API stopped answering (its node
        lost) to the first naming another leader."""
        start = next(i for i, s in enumerate(self.samples) if s.leader)
        first = self.samples[start].leader
        lost = next(s.at for s in self.samples[start:] if first not in s.answering)
        return self.elected_at() - lost


def test_failover_scenario_passes_and_its_rto_holds_the_election(
    sandbox: Path, tmp_path: Path
) -> None:
    watch = ElectionWatch(sandbox)
    poller = threading.Thread(target=watch.run, daemon=True)
    poller.start()
    try:
        run = run_drills(["run", str(SCENARIO), "--reports-dir", str(tmp_path)], sandbox, tmp_path)
    finally:
        watch.stop.set()
        poller.join(timeout=5)
    assert run.returncode == 0, run.stdout + run.stderr
    record = run.record()
    assert record["verdict"] == "pass"
    assert "promote" not in {s["kind"] for s in record["timeline"]}
    kill = next(s for s in record["timeline"] if s["kind"] == "kill")
    assert kill["detail"].startswith("leader = "), kill
    lab = record["lab"]
    assert lab["settings"] == {
        "ttl": 10,
        "loop_wait": 2,
        "retry_timeout": 4,
        "maximum_lag_on_failover": 1048576,
        "synchronous_mode": False,
    }
    assert "patroni" in lab["versions"]["patroni"] and "etcd" in lab["versions"]["etcd"]
    # Ground truth: no write can succeed before Patroni elects the new leader.
    election = watch.election_s()
    rto = record["measurements"]["rto_s"]
    assert election > 5, f"the election took {election:.2f}s with ttl 10: did Patroni decide?"
    assert rto >= election - 2 * POLL_S, (rto, election)
    assert rto <= election + 3, (rto, election)
    # The checker's "new leader elected" lies within one patroni-probe interval of the test's
    # own observation (both on the machine's monotonic clock), and the RTO is not shorter.
    failover = record["failover"]
    history = (tmp_path / record["history"]).read_text().splitlines()[0]
    fault_at = json.loads(history)["mono_ns"] / 1e9 + failover["fault_s"]
    seen = watch.elected_at() - fault_at
    elected = failover["leader_elected_after_s"]
    assert abs(elected - seen) <= failover["interval_s"] + 2 * POLL_S, (elected, seen)
    assert rto >= seen - 2 * POLL_S, (rto, seen)
    assert failover["leader_before"] != failover["leader_after"]
    assert kill["detail"].startswith(f"leader = {failover['leader_before']}")


def test_sigterm_mid_drill_leaves_nothing(sandbox: Path, tmp_path: Path) -> None:
    status, _, err = signal_drill_at(SCENARIO, sandbox, tmp_path, "step 1/4", signal.SIGTERM)
    assert status != 0, err
    assert "removing lab" in err
    # The sandbox fixture checks: no process and no file of the lab left.


def test_sigkill_then_recover_leaves_nothing(sandbox: Path, tmp_path: Path) -> None:
    env = drills_env(sandbox) | {"DRILLS_STATE_DIR": str(tmp_path / "state")}
    sigkill_drill_at(SCENARIO, env, tmp_path / "runs", "step 2/4")
    assert leftover_processes(sandbox), "the dead harness should have left its lab running"
    recovered = subprocess.run(
        [sys.executable, "-m", "drills", "recover"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert recovered.returncode == 0, recovered.stderr
    assert "removed lab" in recovered.stdout
    assert leftover_processes(sandbox) == []
    assert list(sandbox.iterdir()) == []


@dataclass
class RunningLab:
    lab: PatroniLab
    handle: LabHandle
    root: Path

    def member(self, name: str) -> PatroniMember:
        target = self.handle.targets[name]
        assert isinstance(target, PatroniMember)
        return target


@pytest.fixture(scope="module")
def patroni_lab() -> Iterator[RunningLab]:
    """One lab for the tests that do not need a fresh one (its members run as `postgres`
    under root: their directory lives in a temp directory everyone can reach)."""
    box = Path(tempfile.mkdtemp(prefix="drills-test-"))
    box.chmod(0o777)
    saved = tempfile.tempdir
    tempfile.tempdir = str(box)
    config = PatroniLabConfig.model_validate(
        {"kind": "patroni", "ttl": 10, "loop_wait": 2, "retry_timeout": 4}
    )
    lab = PatroniLab(config, lambda message: None)
    try:
        handle = lab.start()
        yield RunningLab(lab, handle, lab.root)
        started = time.monotonic()
        lab.stop()
        assert time.monotonic() - started < 5, "stopping the lab took too long"
        assert leftover_processes(box) == [] and list(box.iterdir()) == []
    finally:
        lab.stop()
        tempfile.tempdir = saved
        shutil.rmtree(box, ignore_errors=True)


def _cluster(running: RunningLab) -> dict[str, Any]:
    url = running.handle.variables["rest_urls"].split(",")[0]
    answer: dict[str, Any] = requests.get(url + "/cluster", timeout=2).json()
    return answer


def _replica_running(running: RunningLab, within: float = 30) -> None:
    """Wait (bounded) until Patroni reports a replica running: on a busy machine the lab can be
    up a moment before its replica's member says so."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        members = _cluster(running)["members"]
        if any(m["role"] == "replica" and m["state"] in ("running", "streaming") for m in members):
            return
        time.sleep(0.2)
    raise AssertionError(f"no replica running after {within:g}s: {_cluster(running)}")


def test_role_targets_resolve_to_what_the_rest_api_says(patroni_lab: RunningLab) -> None:
    _replica_running(patroni_lab)
    roles = {m["name"]: m["role"] for m in _cluster(patroni_lab)["members"]}
    leader, target = patroni_lab.handle.targets["leader"].resolve()  # type: ignore[attr-defined]
    assert roles[leader] in ("leader", "master") and target is patroni_lab.member(leader)
    replica, _ = patroni_lab.handle.targets["replica"].resolve()  # type: ignore[attr-defined]
    assert roles[replica] == "replica"


def test_every_path_between_sites_goes_through_a_link(patroni_lab: RunningLab) -> None:
    links = patroni_lab.handle.facts["links"]
    assert set(links) == {
        "clients-a1", "clients-b1", "replication-a1", "replication-b1", "etcd-a", "etcd-b",
    }  # fmt: skip
    leader, _ = patroni_lab.handle.targets["leader"].resolve()  # type: ignore[attr-defined]
    replica = "b1" if leader == "a1" else "a1"
    with psycopg.connect(patroni_lab.handle.variables[f"{replica}.dsn"]) as conn:
        row = conn.execute("SELECT sender_port FROM pg_stat_wal_receiver").fetchone()
    assert row is not None and row[0] == links[f"replication-{leader}"]["port"]
    config = yaml.safe_load((patroni_lab.root / replica / "patroni.yml").read_text())
    site = replica[0]
    assert config["etcd3"] == {"host": f"127.0.0.1:{links[f'etcd-{site}']['port']}",
                               "use_proxies": True}  # fmt: skip


def test_no_password_is_trusted_or_on_a_command_line(patroni_lab: RunningLab) -> None:
    variables = patroni_lab.handle.variables
    secrets = patroni_lab.lab.secrets.all()
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(variables["a1.dsn"].replace(f"passfile={variables['passfile']}", ""))
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        assert not any(secret in cmdline for secret in secrets), cmdline
    for path in patroni_lab.root.glob("*/patroni.yml"):
        assert path.stat().st_mode & 0o077 == 0, path


def test_pause_stops_patroni_and_postgres_and_resume_continues_them(
    patroni_lab: RunningLab,
) -> None:
    replica, member = patroni_lab.handle.targets["replica"].resolve()  # type: ignore[attr-defined]
    assert isinstance(member, PatroniMember)
    postmaster = member.postmaster()
    assert postmaster is not None and postmaster not in member.roots()[:1]
    pause = member.pausing(replica)
    try:
        pause.make()
        assert state(member.pid()) == "T" and state(postmaster) == "T"
    finally:
        pause.undo()
    assert state(member.pid()) != "T" and state(postmaster) != "T"


def test_kill_loses_the_node_and_restart_brings_it_back(patroni_lab: RunningLab) -> None:
    replica, member = patroni_lab.handle.targets["replica"].resolve()  # type: ignore[attr-defined]
    assert isinstance(member, PatroniMember)
    patroni, postmaster = member.pid(), member.postmaster()
    assert postmaster is not None
    member.send(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while (alive(patroni) or alive(postmaster)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(patroni) and not alive(postmaster), "Patroni and PostgreSQL die together"
    member.restart()
    leader, _ = patroni_lab.handle.targets["leader"].resolve()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    streaming: list[tuple[object, ...]] = []
    while time.monotonic() < deadline and not streaming:
        time.sleep(0.2)
        with psycopg.connect(patroni_lab.handle.variables[f"{leader}.dsn"]) as conn:
            streaming = conn.execute(
                "SELECT pid FROM pg_stat_replication"
                " WHERE application_name = %s AND state = 'streaming'",
                (replica,),
            ).fetchall()
    assert streaming, f"{replica} did not stream again after its restart"
    assert member.postmaster() not in (None, postmaster)
