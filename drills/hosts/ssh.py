"""Commands on a host through the OpenSSH client: batch mode (no prompt), the host's key
checked against known_hosts (never accepted blindly), one connection per command.

Nothing secret goes on the command line: the key is a file, and a command's input goes on
its standard input."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from drills.childenv import child_environ
from drills.errors import TargetError
from drills.hosts.agent import agent_program
from drills.hosts.spec import HostSpec
from drills.pidfile import StalePidFile
from drills.signals import held

NO_PYTHON = 127  # the shell's status for a command it cannot find


class SshTimeout(TargetError):
    """The command did not finish in time (or kept the session's output open)."""


class Ssh:
    def __init__(self, spec: HostSpec, name: str) -> None:
        self.spec = spec
        self.name = name  # the target's name, for errors

    def argv(self, command: str) -> list[str]:
        spec = self.spec
        options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
        options += ["-o", f"ConnectTimeout={max(1, round(spec.connect_timeout))}"]
        options += ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2"]
        options += ["-o", "LogLevel=ERROR", "-p", str(spec.port)]
        if spec.key is not None:
            options += ["-i", str(spec.key), "-o", "IdentitiesOnly=yes"]
        if spec.known_hosts is not None:
            options += ["-o", f"UserKnownHostsFile={spec.known_hosts}"]
        return ["ssh", *options, "--", spec.ssh, command]

    def run(self, command: str, stdin: str = "", timeout_s: float = 60.0) -> str:
        """Run `command` in the host's shell; its output, or TargetError with its last lines.

        A signal waits until it is done: cut short, a change could land after its revert."""
        try:
            with held():
                done = subprocess.run(
                    self.argv(command),
                    input=stdin,
                    capture_output=True,
                    text=True,
                    timeout=timeout_s,
                    env=child_environ(),
                    start_new_session=True,
                )
        except subprocess.TimeoutExpired:
            raise SshTimeout(f"{self.name}: {self._where()}: no answer in {timeout_s:g}s") from None
        except FileNotFoundError:
            raise TargetError(f"{self.name}: no `ssh` client on PATH (openssh-client)") from None
        if done.returncode != 0:
            raise TargetError(f"{self.name}: {self._where()}: {self._failure(done)}")
        return done.stdout

    def agent(self, op: str, timeout_s: float = 60.0, **args: Any) -> dict[str, Any]:
        """Run one operation of drills' process agent (drills.hosts.agent) on the host. The
        operation and its arguments travel inside the program, on standard input."""
        out = self.run("python3 -", stdin=agent_program(op, args), timeout_s=timeout_s)
        try:
            answer: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise TargetError(f"{self.name}: the agent on {self._where()} said {out!r}") from None
        if answer.get("error"):
            stale = answer.get("stale")
            raise (StalePidFile if stale else TargetError)(str(answer["error"]))
        return answer

    def _where(self) -> str:
        return f"ssh {self.spec.describe()}"

    def _failure(self, done: subprocess.CompletedProcess[str]) -> str:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-2:])
        if done.returncode == 255:
            return f"cannot connect: {tail or 'ssh exited 255'}"
        if done.returncode == NO_PYTHON and "python3" in tail:
            return "no python3 on the host (drills runs its process agent with python3)"
        return f"exited {done.returncode}: {tail}"
