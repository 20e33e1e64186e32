"""`exec`: run a shell command. Its environment is the harness's without drills' own secrets
(drills.childenv), with the lab's variables as DRILLS_LAB_* and the secrets its command refers
to as DRILLS_SECRET_N (never in its text). It runs in a process group of its own, and a
timeout kills the whole group, not just the shell."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from typing import ClassVar, Literal

from pydantic import PrivateAttr

from drills.childenv import child_environ
from drills.durations import Duration
from drills.errors import StepError
from drills.steps.base import STEPS, StepConfig, StepContext

REAP_TIMEOUT_S = 5.0  # after the group is killed, for its output pipes to close


def lab_environment(variables: dict[str, str]) -> dict[str, str]:
    return {
        "DRILLS_LAB_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper(): value
        for name, value in variables.items()
    }


@STEPS.register("exec")
class Exec(StepConfig):
    kind: Literal["exec"]
    command: str
    timeout: Duration = 60.0
    shorthand: ClassVar[str | None] = "command"
    _secret_env: dict[str, str] = PrivateAttr(default_factory=dict)

    def give_secrets(self, env: dict[str, str]) -> None:
        """The secret variables the command refers to (`"$DRILLS_SECRET_1"`), with values."""
        self._secret_env = dict(env)

    def describe(self) -> str:
        return f"exec {self.command}"

    def run(self, ctx: StepContext) -> str:
        env = child_environ() | lab_environment(ctx.variables) | self._secret_env
        process = subprocess.Popen(
            ["/bin/sh", "-c", self.command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,  # its own process group, for the timeout to kill
        )
        try:
            stdout, stderr = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise StepError(f"exec timed out after {self.timeout:g}s: {self.command}") from None
        except BaseException:  # interrupted: nothing it started outlives the drill
            _kill_group(process)
            raise
        if process.returncode != 0:
            tail = " | ".join((stderr or stdout).strip().splitlines()[-2:])
            raise StepError(f"exec exited {process.returncode}: {self.command}: {tail}")
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
