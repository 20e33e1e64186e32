"""A systemd service on another host, reached over SSH: a network namespace of the test's own
with a systemd of its own as pid 1 there (tests/systemdhost.py), its sshd one unit and an HTTP
server another, restarted by systemd (Restart=always, RestartSec=1) when it dies.

`kill` is measured against the moment the restarted server itself says it listens; a pause and
a stop of two units are left in place by SIGKILL of the harness and undone by `drills recover`;
a unit holding drills' own SSH session is refused."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import drills_cli, drills_env, sigkill_drill_at
from tests.sshhost import SshHost
from tests.systemdhost import SystemdHost, missing, systemd_host

INTERVAL_S = 0.02
# The server notes time.monotonic_ns() once it listens: CLOCK_MONOTONIC is the machine's, in
# every PID namespace, so the note compares with the drill's own clock.
SERVER = """
import http.server, sys, time
handler = http.server.SimpleHTTPRequestHandler
server = http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), handler)
with open(sys.argv[3], "a") as notes:
    notes.write(f"{time.monotonic_ns()}\\n")
server.serve_forever()
"""


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SystemdHost, int, Path]]:
    why = missing()
    if why:
        pytest.skip(why)
    directory = tmp_path_factory.mktemp("systemdhost")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    (directory / "server.py").write_text(SERVER)
    listening = directory / "listening"

    def units(made: SshHost) -> dict[str, str]:
        server = f"{directory / 'server.py'} {made.service_address} {port} {listening}"
        return {
            "web.service": f"Restart=always\nRestartSec=1\nExecStart={sys.executable} {server}",
            "idle.service": "ExecStart=/bin/sleep infinity",
        }

    with systemd_host(directory, units) as made:
        yield made, port, listening


def config(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "drills.yaml"
    path.write_text("hosts:\n  allow: ['10.*']\n")
    return {"DRILLS_CONFIG": str(path)}


def scenario(tmp_path: Path, made: SystemdHost, port: int, steps: str) -> Path:
    path = tmp_path / "unit.yaml"
    path.write_text(
        f"""
name: host-unit
targets:
  web: {{host: {made.yaml()}, unit: web}}
  idle: {{host: {made.yaml()}, unit: idle.service}}
  sshd: {{host: {made.yaml()}, unit: ssh-test}}
probes:
  web: {{kind: http, url: "http://{made.service_address}:{port}/", interval: 20ms,
         timeout: 300ms}}
service_probe: web
steps:
{steps}
"""
    )
    return path


def history_clock(record_path: Path) -> int:
    record = json.loads(record_path.read_text())
    history = record_path.parent / record["history"]
    first = json.loads(history.read_text().splitlines()[0])
    return int(first["mono_ns"])


def test_kill_is_measured_against_systemds_restart(
    sandbox: Path, tmp_path: Path, host: tuple[SystemdHost, int, Path]
) -> None:
    made, port, listening = host
    before = made.show("web.service", "NRestarts", "InvocationID")
    steps = "  - wait: 1s\n  - kill: web\n  - wait-until: {probe: web, timeout: 10s}\n"
    path = scenario(tmp_path, made, port, steps + "  - wait: 500ms\n")
    reports = tmp_path / "runs"
    env = drills_env(sandbox) | config(tmp_path)
    run = drills_cli(["run", str(path), "--reports-dir", str(reports)], env, timeout=120)
    assert run.returncode == 2, run.stderr + run.stdout  # no write probe: RPO unknown
    [found] = sorted(reports.glob("*.json"))
    record = json.loads(found.read_text())
    kill = next(s for s in record["timeline"] if s["kind"] == "kill")
    assert "SIGKILL sent to the processes of web.service on root@" in kill["detail"]
    after = made.show("web.service", "NRestarts", "InvocationID", "ActiveExitTimestampMonotonic")
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    assert after["InvocationID"] != before["InvocationID"]
    # Truth: the server died when systemd saw its unit leave `active` (its own clock, in µs);
    # it was back when the server restarted by systemd noted that it listens.
    clock_ns = history_clock(found)
    died_s = (int(after["ActiveExitTimestampMonotonic"]) * 1000 - clock_ns) / 1e9
    back_s = (int(listening.read_text().split()[-1]) - clock_ns) / 1e9
    # systemd notes the exit once it reaps the process: it may be after systemctl returned
    assert kill["start_s"] <= died_s <= kill["end_s"] + 0.1, (died_s, kill)
    assert back_s - died_s >= 1.0  # RestartSec
    [outage] = record["probes"]["web"]["outages"]
    tolerance = 2 * INTERVAL_S + 0.05
    assert abs(outage["downtime_lower_s"] - (back_s - died_s)) <= tolerance, (outage, died_s)
    rto = record["measurements"]["rto_s"]  # from the kill step's start
    assert abs(rto - (back_s - kill["start_s"])) <= tolerance, (rto, back_s, kill)


def processes_state(made: SystemdHost, unit: str) -> str:
    pid = made.show(unit, "MainPID")["MainPID"]
    status = made.ssh("cat", f"/proc/{pid}/status")
    return next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))


def test_sigkill_then_recover_resumes_and_starts_units(
    sandbox: Path, tmp_path: Path, host: tuple[SystemdHost, int, Path]
) -> None:
    made, port, _ = host
    steps = "  - pause: web\n  - stop: idle\n  - wait: 60s\n"
    path = scenario(tmp_path, made, port, steps)
    env = drills_env(sandbox) | config(tmp_path) | {"DRILLS_STATE_DIR": str(tmp_path / "state")}
    sigkill_drill_at(path, env, tmp_path / "runs", "step 3/3")
    assert processes_state(made, "web.service") == "T"
    assert made.show("idle.service", "ActiveState")["ActiveState"] == "inactive"
    recovered = drills_cli(["recover"], env)
    assert recovered.returncode == 0, recovered.stderr
    where = f"on root@{made.address}"
    assert f"resumed web (unit web.service) {where}" in recovered.stdout
    assert f"started idle (unit idle.service) {where}" in recovered.stdout
    assert processes_state(made, "web.service") == "S"
    assert made.show("idle.service", "ActiveState")["ActiveState"] == "active"


def test_a_unit_holding_drills_own_session_is_refused(
    sandbox: Path, tmp_path: Path, host: tuple[SystemdHost, int, Path]
) -> None:
    made, port, _ = host
    before = made.show("ssh-test.service", "MainPID", "ActiveState")
    path = scenario(tmp_path, made, port, "  - wait: 200ms\n  - kill: sshd\n")
    env = drills_env(sandbox) | config(tmp_path)
    run = drills_cli(["run", str(path), "--reports-dir", str(tmp_path / "runs")], env)
    assert "ssh-test.service holds drills' own SSH session" in run.stdout + run.stderr
    assert made.show("ssh-test.service", "MainPID", "ActiveState") == before
