"""Shell commands of a drill (`exec` and its `undo`): /bin/sh in a process group of its own, so
that a timeout or an interruption kills everything the command started, not just the shell."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

from drills.errors import StepError

REAP_TIMEOUT_S = 5.0  # after the group is killed, for its output pipes to close


def run_shell(command: str, env: dict[str, str], timeout: float) -> str:
    """Run `command` with /bin/sh in a process group of its own; the end of its output, or
    StepError when it fails or times out (the whole group is killed)."""
    process = subprocess.Popen(
        ["/bin/sh", "-c", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, for the timeout to kill
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise StepError(f"exec timed out after {timeout:g}s: {command}") from None
    except BaseException:  # interrupted: nothing it started outlives the drill
        _kill_group(process)
        raise
    if process.returncode != 0:
        tail = " | ".join((stderr or stdout).strip().splitlines()[-2:])
        raise StepError(f"exec exited {process.returncode}: {command}: {tail}")
    return stdout.strip()[-200:]


def _kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL the command's process group (the shell and all it started), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # gone, or setuid (sudo)
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.communicate(timeout=REAP_TIMEOUT_S)
    if process.returncode is None:
        process.kill()
        process.wait()
