"""References in a scenario's strings: `${lab.NAME}`, `${env:NAME}` and `${file:PATH}`.

Values from the environment and from files are secrets. Pasted into a shell command they would
show in `ps` and run as shell code if they held `;` or `$(...)`, so an `exec` step's command
gets a variable instead (`"$DRILLS_SECRET_1"`) and the value goes into the command's
environment. A target's `start` command cannot hold one at all: it reads the environment itself.
Nor can a lab container's `command` or `entrypoint` (shown by `ps` and `docker inspect`): the
container gets it in its `environment:` and reads it there.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drills.configfile import indexed_key
from drills.errors import Problem
from drills.yamlsource import Path_, Source

REF = re.compile(r"\$\{([^}]*)\}")
SECRET_VARIABLE = "DRILLS_SECRET_"
# Commands that may not reference a secret at all, and where the secret goes instead.
REFUSED = {
    "start": "`start` runs in drills' environment, so read it there ($NAME, or $(cat FILE))",
    "container": "`ps` and `docker inspect` show it; put it in the container's `environment:` "
    "and read it there ($NAME)",
}


@dataclass
class Secrets:
    """The secret values a scenario references, and the variables its exec steps get them in."""

    values: set[str] = field(default_factory=set)
    env: dict[str, str] = field(default_factory=dict)  # DRILLS_SECRET_N -> value
    names: dict[str, str] = field(default_factory=dict)  # reference -> DRILLS_SECRET_N

    def variable(self, ref: str, value: str) -> str:
        name = self.names.get(ref)
        if name is None:
            name = self.names[ref] = f"{SECRET_VARIABLE}{len(self.names) + 1}"
        self.env[name] = value
        return name

    def used_by(self, command: str) -> dict[str, str]:
        """The secret variables `command` refers to, with their values."""
        used = set(re.findall(rf"\b{SECRET_VARIABLE}\d+\b", command))
        return {name: value for name, value in self.env.items() if name in used}

    def references_of(self, command: str) -> dict[str, str]:
        """The secret variables `command` refers to, with the reference each stands for
        (`env:NAME`, `file:PATH`): what `drills recover` resolves again, never the values."""
        used = self.used_by(command)
        return {name: _anchored(ref) for ref, name in self.names.items() if name in used}


def _anchored(ref: str) -> str:
    """`file:PATH` with PATH absolute: recovery may run from another directory."""
    if not ref.startswith("file:"):
        return ref
    return f"file:{Path(ref[5:]).expanduser().resolve()}"


def secret_value(ref: str) -> tuple[str, str | None]:
    """The value of `env:NAME` or `file:PATH` here and now, or a problem."""
    if ref.startswith("env:"):
        name = ref[4:]
        if name in os.environ:
            return os.environ[name], None
        return "", f"environment variable {name!r} is not set"
    try:
        return Path(ref[5:]).expanduser().read_text(encoding="utf-8").strip(), None
    except (OSError, UnicodeDecodeError) as exc:
        return "", f"cannot read secret file {ref[5:]!r}: {exc}"


def shell_quote_state(text: str) -> str:
    """The POSIX shell quoting in effect at the end of `text`: "" (none), "'" or '"'."""
    state, escaped = "", False
    for char in text:
        if escaped:
            escaped = False
        elif state == "'":
            state = "" if char == "'" else state
        elif char == "\\":
            escaped = True
        elif char == state:
            state = ""
        elif not state and char in "'\"":
            state = char
    return state


def _step_kind(data: Any, index: Any) -> Any:
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, list) or not isinstance(index, int) or index >= len(steps):
        return None
    step = steps[index]
    return step.get("kind") if isinstance(step, dict) else None


def command_kind(data: Any, path: Path_) -> str | None:
    """ "exec" for an exec step's command, "start" for a target's start command, "container"
    for a lab container's command or entrypoint (a string or one of its items), else None."""
    if len(path) == 3 and path[0] == "targets" and path[2] == "start":
        return "start"
    if path[:2] == ("lab", "containers") and path[3:4] in (("command",), ("entrypoint",)):
        return "container" if len(path) in (4, 5) else None
    rest = path[2:] if len(path) > 2 and path[0] == "steps" else ()
    if rest in (("exec",), ("exec", "command"), ("exec", "undo")):
        return "exec"
    if rest in (("command",), ("undo",)) and _step_kind(data, path[1]) == "exec":
        return "exec"
    return None


class Interpolation:
    """Fills every reference of `source`; what cannot be filled becomes a problem."""

    def __init__(
        self, source: Source, lab_vars: dict[str, str] | None, problems: list[Problem]
    ) -> None:
        self.source = source
        self.lab_vars = lab_vars
        self.problems = problems
        self.secrets = Secrets()

    def run(self) -> Any:
        return self.walk(self.source.data, ())

    def walk(self, value: Any, path: Path_) -> Any:
        if isinstance(value, str):
            return self.fill(value, path)
        if isinstance(value, dict):
            return {k: self.walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, (*path, i)) for i, v in enumerate(value)]
        return value

    def add(self, path: Path_, message: str) -> None:
        self.problems.append(
            Problem(self.source.file, self.source.line_of(path), indexed_key(path), message)
        )

    def fill(self, text: str, path: Path_) -> str:
        command = command_kind(self.source.data, path)

        def one(match: re.Match[str]) -> str:
            ref = match.group(1).strip()
            value, problem = self.resolve(ref)
            if problem is not None:
                self.add(path, problem)
                return match.group(0)
            if ref.startswith(("env:", "file:")):
                self.secrets.values.add(value)
                if command is not None:
                    return self.in_command(command, ref, value, text[: match.start()], path)
            return value

        filled = REF.sub(one, text)
        if "${" in REF.sub("", text):
            self.add(
                path, f"unterminated reference in {text!r}: write ${{lab.NAME}} or ${{env:NAME}}"
            )
        return filled

    def in_command(self, command: str, ref: str, value: str, before: str, path: Path_) -> str:
        """The shell text standing for a secret in a command (the value goes in its env)."""
        if command in REFUSED:
            self.add(
                path, f"${{{ref}}}: a secret is never pasted into a command; {REFUSED[command]}"
            )
            return ""
        name = self.secrets.variable(ref, value)
        quoting = shell_quote_state(before)
        if quoting == "'":
            self.add(
                path,
                f"${{{ref}}} is inside single quotes: the command gets it as ${name}, which "
                "single quotes would not expand; put it outside them or in double quotes",
            )
        return f"${{{name}}}" if quoting == '"' else f'"${name}"'

    def resolve(self, ref: str) -> tuple[str, str | None]:
        """The reference's value, or a problem."""
        if ref.startswith(("env:", "file:")):
            return secret_value(ref)
        if ref.startswith("lab."):
            return self.lab_variable(ref[4:])
        return "", (
            f"unknown reference ${{{ref}}} (use ${{lab.NAME}}, ${{env:NAME}} or ${{file:PATH}})"
        )

    def lab_variable(self, name: str) -> tuple[str, str | None]:
        if self.lab_vars is None:
            return "", f"${{lab.{name}}} needs a lab, and the scenario declares none"
        if name in self.lab_vars:
            return self.lab_vars[name], None
        known = ", ".join(sorted(self.lab_vars))
        return "", f"unknown lab variable {name!r} (known: {known})"
