"""A remote engine: drills drives a Docker engine through an `ssh://` address.

The test starts its own sshd on 127.0.0.1 (a free port, keys made for the test); the "remote"
host is this one, so `docker system dial-stdio` on the far side reaches the local engine and
the test's containers and published ports are the ones it sees here.
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drills.containers.engine import EngineSpec, connect
from tests.conftest import run_drills
from tests.docker_helpers import allow_all, drills_leftovers, postgres_container

pytestmark = pytest.mark.docker

SSHD = Path("/usr/sbin/sshd")


def _missing() -> str | None:
    if not (SSHD.is_file() and os.access(SSHD, os.X_OK)):
        return f"no {SSHD} (run tools/ensure-test-packages as root: openssh-server)"
    for tool in ("ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"no `{tool}` on PATH (run tools/ensure-test-packages as root: openssh-client)"
    return None


@dataclass
class Remote:
    port: int
    host: str  # ssh://root@127.0.0.1:PORT
    calls: Path  # one line per ssh client run: its arguments
    sshd_log: Path
    client_config: Path

    def clients(self, timeout_s: float = 10) -> list[str]:
        """ssh clients of this test still running after `timeout_s` (bounded wait)."""
        marker = f"-F {self.client_config} "
        deadline = time.monotonic() + timeout_s
        while True:
            found = []
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except (OSError, UnicodeDecodeError):
                    continue
                if marker in cmdline:
                    found.append(f"{entry.name}: {cmdline.strip()}")
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_accepting(port: int, sshd: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if sshd.poll() is not None:
            pytest.fail(f"sshd exited with {sshd.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"sshd did not listen on 127.0.0.1:{port}: {log.read_text()}")
            time.sleep(0.05)


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Remote]:
    """An sshd on 127.0.0.1 letting root in with a key made here, and an `ssh` client that
    uses that key without prompts, for this process and the drills it runs."""
    why = _missing()
    if why:
        pytest.skip(why)
    real_ssh = shutil.which("ssh")
    assert real_ssh is not None
    ssh_dir = tmp_path / "ssh"
    ssh_dir.mkdir()
    for key in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", str(ssh_dir / key)],
            check=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text((ssh_dir / "client_key.pub").read_text())
    port = _free_port()
    config = ssh_dir / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\n"
        f"Port {port}\n"
        f"HostKey {ssh_dir / 'host_key'}\n"
        f"AuthorizedKeysFile {authorized}\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        f"PidFile {ssh_dir / 'sshd.pid'}\n"
        "StrictModes no\n"
    )
    # sshd refuses to start without its privilege-separation directory.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    sshd_log = ssh_dir / "sshd.log"

    # The client side. OpenSSH finds `~/.ssh/config` through the passwd entry (getpwuid), not
    # $HOME, so a HOME of our own is not read. docker-py's `use_ssh_client=True` transport
    # (docker/transport/sshconn.py, SSHSocket.connect) runs `ssh [-l USER] [-p PORT] -- HOST
    # 'docker system dial-stdio'`: the first `ssh` on PATH, with the caller's environment, and
    # no way to add `-F`. So a wrapper named `ssh`, first on PATH, runs the real client with
    # our config file (key, no host-key prompt), and logs each run so that the test can show
    # the engine was reached through it and not through the local socket.
    client_config = ssh_dir / "config"
    client_config.write_text(
        "Host 127.0.0.1\n"
        f"  Port {port}\n"
        "  User root\n"
        f"  IdentityFile {ssh_dir / 'client_key'}\n"
        "  IdentitiesOnly yes\n"
        "  BatchMode yes\n"
        "  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n"
        "  LogLevel ERROR\n"
    )
    calls = ssh_dir / "calls.log"
    calls.touch()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ssh"
    wrapper.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\nexec {real_ssh} -F {client_config} "$@"\n'
    )
    wrapper.chmod(0o755)
    # drills_env() copies os.environ: the drills subprocesses get this PATH as well.
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")

    with sshd_log.open("wb") as log:
        sshd = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        _wait_accepting(port, sshd, sshd_log, timeout_s=10)
        yield Remote(port, f"ssh://root@127.0.0.1:{port}", calls, sshd_log, client_config)
    finally:
        sshd.terminate()
        try:
            sshd.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sshd.kill()
            sshd.wait(timeout=10)


def _went_through_ssh(remote: Remote) -> None:
    """The ssh client ran `docker system dial-stdio` and sshd let the test's key in."""
    calls = remote.calls.read_text().splitlines()
    assert calls, "the ssh client was never run"
    assert all(f"-p {remote.port}" in c and "docker system dial-stdio" in c for c in calls), calls
    assert "Accepted publickey for root from 127.0.0.1" in remote.sshd_log.read_text()


def test_connect_through_ssh(remote: Remote) -> None:
    tag = uuid.uuid4().hex[:8]
    with postgres_container(labels={"org.drills.remote-test": tag}) as (container, _):
        client = connect(EngineSpec.model_validate({"host": remote.host}))
        try:
            assert client.ping()
            listed = client.containers.list(filters={"label": f"org.drills.remote-test={tag}"})
            assert [c.id for c in listed] == [container.id]
        finally:
            client.close()
            # With use_ssh_client, docker-py runs one ssh per request and its close() does
            # not end them: they end when their pipes are collected.
            del client
            gc.collect()
    _went_through_ssh(remote)
    assert remote.clients() == []


PAUSE = """
version: 1
name: remote-engine-pause
engine: {{host: "{host}", helper_image: drills/netutils:local}}
targets:
  db: {{labels: {{org.drills.remote-test: "{tag}"}}}}
probes:
  reads:
    kind: postgres-read
    dsn: "host=127.0.0.1 port={port} user=postgres"
    interval: 20ms
    timeout: 500ms
  writes:
    kind: postgres-write
    dsn: "host=127.0.0.1 port={port} user=postgres"
    interval: 20ms
    timeout: 500ms
  port: {{kind: tcp, host: 127.0.0.1, port: {port}, interval: 20ms}}
service_probe: reads
write_probe: writes
steps:
  - wait: 1s
  - pause: db
  - wait: 1.5s
  - resume: db
  - wait-until: reads
  - wait: 500ms
"""


def test_pause_drill_through_ssh(sandbox: Path, tmp_path: Path, remote: Remote) -> None:
    tag = uuid.uuid4().hex[:8]
    with postgres_container(labels={"org.drills.remote-test": tag}) as (container, port):
        scenario = tmp_path / "remote-pause.yaml"
        scenario.write_text(PAUSE.format(host=remote.host, tag=tag, port=port))
        reports = tmp_path / "runs"
        config = allow_all(tmp_path)
        args = ["run", str(scenario), "--reports-dir", str(reports), "--config", str(config)]
        run = run_drills(args, sandbox, reports, timeout=60)
        assert run.returncode == 0, run.stderr + run.stdout
        record = run.record()
        assert record["verdict"] == "pass"
        container.reload()
        assert container.status == "running"
    assert record["targets"]["db"]["id"] == container.id
    steps = {s["kind"]: s for s in record["timeline"]}
    # True outage: from the engine's pause returning to its unpause returning.
    truth = steps["resume"]["end_s"] - steps["pause"]["end_s"]
    # 1.5 s plus the unpause request, which goes over a new ssh connection (0.7-1.3 s here).
    assert 1.5 <= truth <= 5, truth
    reads = record["probes"]["reads"]
    interval = 0.02
    assert len(reads["outages"]) == 1, reads["outages"]
    assert abs(reads["downtime_s"] - truth) <= 2 * interval + 0.1, (reads["downtime_s"], truth)
    # Frozen, not crashed: every acknowledged write is there.
    assert record["measurements"]["lost_writes"] == 0
    assert record["measurements"]["writes_acked"] > 50
    # A frozen server's kernel still completes TCP handshakes (through docker-proxy too): a
    # connect-only probe does not see a pause, which is why `reads` is the service probe.
    assert record["probes"]["port"]["downtime_s"] < 0.2, record["probes"]["port"]
    _went_through_ssh(remote)
    assert remote.clients() == []
    assert drills_leftovers() == []
