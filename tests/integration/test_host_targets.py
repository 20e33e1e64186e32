"""A process on another host, reached over SSH: a network namespace of the test's own with an
sshd in it (tests/sshhost.py) stands in for the host, an HTTP server there for the service.

The drill pauses the service and cuts it off with iptables on that host, for lengths the test
chose: each outage measured against the drill's own step times; everything reverted at the
end, and after SIGKILL of the harness by `drills recover`."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from drills.proctree import state
from tests.conftest import drills_cli, drills_env, sigkill_drill_at
from tests.sshhost import SshHost, web_service

INTERVAL_S = 0.05


@pytest.fixture
def host(ssh_host_made: SshHost) -> SshHost:
    return ssh_host_made


@pytest.fixture
def web(host: SshHost, tmp_path: Path) -> Iterator[tuple[int, Path, str]]:
    service = web_service(host, tmp_path)
    yield service
    pid = int(service[1].read_text())
    try:  # only the test's own server, whatever the pid names by now
        command = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
        ours = f"http.server {service[0]}" in command
    except OSError:
        ours = False
    for sig in (signal.SIGCONT, signal.SIGKILL) if ours else ():
        os.kill(pid, sig)


def config(tmp_path: Path, allow: str) -> dict[str, str]:
    path = tmp_path / "drills.yaml"
    path.write_text(f"hosts:\n  allow: [{allow!r}]\n")
    return {"DRILLS_CONFIG": str(path)}


def scenario(tmp_path: Path, host: SshHost, web: tuple[int, Path, str], steps: str) -> Path:
    port, pid_file, start = web
    path = tmp_path / "host.yaml"
    path.write_text(
        f"""
name: host-target
targets:
  web:
    host: {host.yaml()}
    pid_file: {pid_file}
    start: {start!r}
probes:
  web: {{kind: http, url: "http://{host.service_address}:{port}/", interval: 50ms,
         timeout: 300ms}}
service_probe: web
steps:
{steps}
"""
    )
    return path


DRILL = """
  - wait: 1s
  - pause: web
  - wait: 1s
  - resume: web
  - wait-until: web
  - partition: {target: web, from: [CLIENT]}
  - wait: 1.5s
  - heal: all
  - wait-until: web
  - stop: web
  - wait: 0.5s
  - start: web
  - wait-until: web
  - wait: 0.5s
"""


def test_pause_partition_and_stop_on_a_host(
    sandbox: Path, tmp_path: Path, host: SshHost, web: tuple[int, Path, str]
) -> None:
    path = scenario(tmp_path, host, web, DRILL.replace("CLIENT", host.client_address))
    env = drills_env(sandbox) | config(tmp_path, "10.*")
    reports = tmp_path / "runs"
    run = drills_cli(["run", str(path), "--reports-dir", str(reports)], env, timeout=120)
    # No write probe, so no RPO: verdict error (exit 2) for that reason alone.
    assert run.returncode == 2, run.stderr + run.stdout
    assert "unknown because:\n  rpo: the scenario has no write probe\n" in run.stdout
    [found] = sorted(reports.glob("*.json"))
    record = json.loads(found.read_text())
    steps = {s["kind"]: s for s in record["timeline"]}
    assert "SIGSTOP sent to 1 processes on root@" in steps["pause"]["detail"]
    outages = record["probes"]["web"]["outages"]
    assert len(outages) == 3, outages
    paused, cut, stopped = (o["downtime_lower_s"] for o in outages)
    tolerance = 2 * INTERVAL_S + 0.1
    assert abs(paused - (steps["resume"]["end_s"] - steps["pause"]["end_s"])) <= tolerance
    assert abs(cut - (steps["heal"]["end_s"] - steps["partition"]["end_s"])) <= tolerance
    # Down from within the stop step until the server, started by the start step, listens:
    # a Python start-up after the start command returned.
    assert steps["start"]["end_s"] - steps["stop"]["end_s"] - tolerance <= stopped
    assert stopped <= steps["start"]["end_s"] - steps["stop"]["start_s"] + 2.0
    assert host.drills_rules() == []
    pid = int(web[1].read_text())
    assert state(pid) not in (None, "T")  # the service started again by the drill runs


HELD = """
  - pause: web
  - partition: {target: web, from: [CLIENT]}
  - wait: 60s
"""


def test_sigkill_then_recover_resumes_and_removes_the_rules_on_the_host(
    sandbox: Path, tmp_path: Path, host: SshHost, web: tuple[int, Path, str]
) -> None:
    path = scenario(tmp_path, host, web, HELD.replace("CLIENT", host.client_address))
    env = drills_env(sandbox) | config(tmp_path, "10.*") | {"DRILLS_STATE_DIR": str(tmp_path)}
    sigkill_drill_at(path, env, tmp_path / "runs", "step 3/3")
    pid = int(web[1].read_text())
    assert state(pid) == "T"
    assert len(host.drills_rules()) == 2
    recovered = drills_cli(["recover"], env)
    assert recovered.returncode == 0, recovered.stderr
    assert f"resumed web on root@{host.address} (1 processes)" in recovered.stdout
    assert f"removed the drill's iptables rules from web on root@{host.address}" in (
        recovered.stdout
    )
    assert state(pid) not in (None, "T")
    assert host.drills_rules() == []
    assert drills_cli(["recover"], env).stdout == "nothing to recover\n"


def test_a_host_not_in_the_allow_list_is_refused(
    sandbox: Path, tmp_path: Path, host: SshHost, web: tuple[int, Path, str]
) -> None:
    path = scenario(tmp_path, host, web, "  - pause: web\n")
    env = drills_env(sandbox) | config(tmp_path, "db-*.example.com")
    run = drills_cli(["run", str(path), "--reports-dir", str(tmp_path / "runs")], env)
    assert run.returncode == 2
    assert (
        f"targets.web.host: host {host.address} is not in the allow-list of "
        f"{tmp_path / 'drills.yaml'}"
    ) in run.stderr
    assert state(int(web[1].read_text())) not in (None, "T")


def test_a_partition_that_would_cut_drills_own_ssh_path_is_refused(
    sandbox: Path, tmp_path: Path, host: SshHost, web: tuple[int, Path, str]
) -> None:
    own = f"10.{host.subnet}.0.0/24"  # holds the address drills reaches the host from
    path = scenario(tmp_path, host, web, f"  - partition: {{target: web, from: [{own}]}}\n")
    env = drills_env(sandbox) | config(tmp_path, "10.*")
    run = drills_cli(["run", str(path), "--reports-dir", str(tmp_path / "runs")], env)
    assert run.returncode == 2, run.stderr + run.stdout
    assert f"web: cutting {own} would cut drills' own SSH connection (from " in run.stdout
    assert host.drills_rules() == []
