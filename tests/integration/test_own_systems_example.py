"""The example of docs/own-systems.md, run as written against loopback stand-ins for two data
centres (tests/standins.py): the figures of its record checked against the drill's own step
times, and everything reverted on both engines and on the host."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from drills.pidfile import read_pid
from drills.proctree import state
from tests.conftest import drills_cli, drills_env
from tests.paths import REPO
from tests.second_engine import Engine
from tests.sshhost import SshHost
from tests.standins import estate

EXAMPLE = REPO / "docs" / "examples" / "two-dc.yaml"
INTERVAL_S = 0.05


@pytest.fixture
def env(tmp_path: Path, ssh_host_made: SshHost, dc2_engine: Engine) -> Iterator[dict[str, str]]:
    with estate(tmp_path, ssh_host_made, dc2_engine) as found:
        yield found


def test_the_docs_show_the_example_file_as_it_is() -> None:
    docs = (REPO / "docs" / "own-systems.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", docs, flags=re.S)
    assert EXAMPLE.read_text() in blocks


@pytest.mark.docker
@pytest.mark.haproxy
@pytest.mark.postgres
def test_the_two_data_centre_example(
    sandbox: Path, tmp_path: Path, env: dict[str, str], dc2_engine: Engine
) -> None:
    reports = tmp_path / "runs"
    run = drills_cli(
        ["run", str(EXAMPLE), "--reports-dir", str(reports)], drills_env(sandbox) | env
    )
    assert run.returncode == 0, run.stderr + run.stdout
    [found] = sorted(reports.glob("*.json"))
    record = json.loads(found.read_text())
    steps = {s["kind"]: s for s in record["timeline"]}
    tolerance = 2 * INTERVAL_S + 0.05
    # The database was frozen from the end of the pause to the end of the resume.
    frozen = steps["resume"]["end_s"] - steps["pause"]["end_s"]
    db = record["probes"]["db"]
    assert len(db["outages"]) == 1, db["outages"]
    assert abs(db["downtime_lower_s"] - frozen) <= tolerance
    rto = record["measurements"]["rto_s"]
    assert abs(rto - (steps["resume"]["end_s"] - steps["pause"]["start_s"])) <= tolerance
    assert record["measurements"]["lost_writes"] == 0  # a hang loses no acknowledged write
    verdicts = record["verdicts"]
    judged = {k: v["verdict"] for k, v in verdicts.items()}
    assert {"rto", "rpo", "availability", "rto:shop", "availability:shop"} <= set(judged)
    assert set(judged.values()) == {"met"}, verdicts
    assert verdicts["rto:shop"]["measured"] <= 10
    # Reverted: both shops run, each on its own engine; the database is not stopped.
    shops = [docker.from_env(), dc2_engine.client]
    assert [c.containers.get("shop").status for c in shops] == ["running", "running"]
    pid = read_pid(Path(env["PGDATA"]) / "postmaster.pid", "db")
    assert state(pid) not in (None, "T")
