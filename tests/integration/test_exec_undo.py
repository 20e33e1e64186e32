"""`exec` with `undo:` as a user runs it: the undo runs when the drill is interrupted, and after
SIGKILL `drills recover` runs it; a second drill touching the same lock name is refused."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import drills_cli, drills_env, sigkill_drill_at, signal_drill_at


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    server.listen(256)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def scenario(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "exec-undo.yaml"
    path.write_text(
        f"""
name: exec-undo
probes:
  port: {{kind: tcp, port: {port}, interval: 50ms}}
service_probe: port
steps:
  - exec:
      command: touch {tmp_path}/cut
      undo: rm {tmp_path}/cut && touch {tmp_path}/undone
      locks: [test-firewall]
  - wait: 60s
"""
    )
    return path


def test_ctrl_c_runs_the_undo_and_the_lock_holds_meanwhile(
    sandbox: Path, tmp_path: Path, listener: int
) -> None:
    path = scenario(tmp_path, listener)
    other = tmp_path / "other"
    other.mkdir()
    refused: list[subprocess.CompletedProcess[str]] = []

    def second_drill() -> None:  # another drill whose exec touches the same thing
        refused.append(drills_cli(["run", str(scenario(other, listener))], drills_env(sandbox)))

    status, _, err = signal_drill_at(
        path, sandbox, tmp_path / "runs", "step 2/2", signal.SIGINT, second_drill
    )
    [second] = refused
    assert second.returncode == 2
    assert "name:test-firewall is in use by another drill: scenario 'exec-undo'" in second.stderr
    assert not (other / "cut").exists()
    assert status == 130, err  # 128 + SIGINT, as a shell reports it
    assert f"reverted: undo: rm {tmp_path}/cut" in err
    assert not (tmp_path / "cut").exists() and (tmp_path / "undone").exists()


def test_sigkill_then_recover_runs_the_undo(sandbox: Path, tmp_path: Path, listener: int) -> None:
    path = scenario(tmp_path, listener)
    env = drills_env(sandbox) | {"DRILLS_STATE_DIR": str(tmp_path / "state")}
    sigkill_drill_at(path, env, tmp_path / "runs", "step 2/2")
    assert (tmp_path / "cut").exists() and not (tmp_path / "undone").exists()
    recovered = drills_cli(["recover"], env)
    assert recovered.returncode == 0, recovered.stderr
    assert f"ran the undo of an exec step: rm {tmp_path}/cut" in recovered.stdout
    assert not (tmp_path / "cut").exists() and (tmp_path / "undone").exists()
    assert drills_cli(["recover"], env).stdout == "nothing to recover\n"
