"""`delete-config`: a node's postgresql.conf or pg_hba.conf removed or garbled, then the node
restarted: configuration loss.

Before the change the original is copied into the lab's directory (`config_copy`), where a
`restore-config` step finds it; the change is journalled and its undo pushed first, so that
a drill that ends, fails or is interrupted puts the file back and starts the node again if it
is down. A restart that fails is the expected outcome, recorded, not a step error.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

from drills.abilities import Ability
from drills.errors import TargetError
from drills.files import copy_nofollow
from drills.incidents.server import (
    LOCAL_SERVER,
    LocalServer,
    owner_of,
    restart_after_damage,
    restart_detail,
)
from drills.journal import JOURNAL, JournalEntry, Recovery
from drills.labs.lab_paths import in_lab_problem
from drills.steps.base import STEPS, Revert, StepConfig, StepContext

ConfigFile = Literal["postgresql.conf", "pg_hba.conf"]

# Plausible edits gone wrong, each of which PostgreSQL refuses at start-up.
GARBLED: dict[str, str] = {
    "postgresql.conf": (
        "# PostgreSQL configuration file\n"
        "listen_addresses = '127.0.0.1\n"  # unterminated quoted string
        "max_connections = sixty\n"
        "shared_buffers = 32MB'\n"
    ),
    "pg_hba.conf": (
        "# TYPE  DATABASE  USER  ADDRESS       METHOD\n"
        "local   all       all                 trusted\n"  # no such method
        "host    all       all   127.0.0.1/33  trust\n"  # no such netmask
    ),
}


def config_copy(lab_root: Path, node: str, file: str) -> Path:
    """Where `delete-config` keeps the original of `file` of `node` (for `restore-config`)."""
    return lab_root / "config-copies" / node / file


def put_back(copy: Path, path: Path) -> bool:
    """Copy the kept original back over `path` with its owner and mode, unless `path` already
    holds it; say whether anything was done."""
    if path.is_file() and path.read_bytes() == copy.read_bytes():
        return False
    temporary = path.with_name(f".{path.name}.drills")
    temporary.unlink(missing_ok=True)
    copy_nofollow(copy, temporary, owner_of(copy))
    os.replace(temporary, path)
    return True


CONFIG_REVERT = "config"


def config_key(node: str, file: str) -> tuple[str, str, str]:
    """The revert of a changed configuration file (a `restore-config` step may drop it)."""
    return (CONFIG_REVERT, node, file)


@JOURNAL.register("config-file")
class ConfigFileChanged(JournalEntry):
    """A configuration file about to be removed or garbled; recovered by putting the copy
    back (the lab's own entry then stops the server and removes the directory)."""

    op: Literal["config-file"] = "config-file"
    subject = "path"
    path: str
    copy_path: str

    def problem(self) -> str | None:
        return in_lab_problem(self.path) or in_lab_problem(self.copy_path)

    def undo(self, recovery: Recovery) -> str | None:
        copy = Path(self.copy_path)
        if not copy.is_file() or not put_back(copy, Path(self.path)):
            return None
        return f"put back {self.path}"


def _keep_copy(server: LocalServer, file: str) -> tuple[Path, Path]:
    path = server.datadir / file
    if not path.is_file():
        raise TargetError(f"{server.name} has no {path}")
    copy = config_copy(server.lab.root, server.name, file)
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy_nofollow(path, copy, owner_of(path))
    return path, copy


def _undo(server: LocalServer, path: Path, copy: Path) -> None:
    """Put the file back; if it was still damaged and the node is down, start the node (if
    something else put the file back, such as `restore-config`, the node is its business)."""
    if not put_back(copy, path):
        return
    try:
        server.pid()
    except TargetError:
        server.start()


@STEPS.register("delete-config")
class DeleteConfig(StepConfig):
    kind: Literal["delete-config"]
    target: str
    file: ConfigFile
    how: Literal["delete", "garble"] = "delete"
    restart: bool = True
    disruptive: ClassVar[bool] = True
    needs: ClassVar[Ability[Any] | None] = LOCAL_SERVER

    def describe(self) -> str:
        return f"delete-config {self.target}: {self.how} {self.file}"

    def run(self, ctx: StepContext) -> str:
        server = ctx.target_as(self.target, LOCAL_SERVER)
        path, copy = _keep_copy(server, self.file)
        ctx.reverts.push(
            Revert(
                config_key(server.name, self.file),
                f"{self.file} of {server.name} put back",
                lambda: _undo(server, path, copy),
            )
        )
        ctx.journal(ConfigFileChanged(path=str(path), copy_path=str(copy)))
        self._change(path)
        incident: dict[str, Any] = {
            "kind": "delete-config",
            "node": server.name,
            "at_ns": time.monotonic_ns(),
            "file": self.file,
            "how": self.how,
            "copy": str(copy),
        }
        ctx.facts["incident"] = incident
        done = "deleted" if self.how == "delete" else "garbled"
        detail = f"{self.file} of {server.name} {done} (original kept in {copy})"
        if not self.restart:
            return detail
        restarted, log_line = restart_after_damage(server)
        incident["restarted"] = restarted
        return f"{detail}; {restart_detail(restarted, log_line)}"

    def _change(self, path: Path) -> None:
        if self.how == "delete":
            path.unlink()
            return
        path.write_text(GARBLED[self.file])  # rewritten in place: owner and mode stay
