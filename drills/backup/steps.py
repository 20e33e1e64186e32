"""`backup` (full, differential or incremental, by pgBackRest) and `restore-config` (a node's
configuration file put back from the copy the lab keeps or from the latest backup)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from drills.abilities import Ability
from drills.backup.lab import BACKED, BACKUP_SOURCE, transfer_lines
from drills.backup.restore import lab_backup_problems
from drills.errors import StepError
from drills.files import chown_nofollow, copy_nofollow
from drills.incidents.config_files import config_copy
from drills.labs.base import LabConfig
from drills.steps.base import STEPS, StepConfig, StepContext

CONFIG_FILES = ("postgresql.conf", "pg_hba.conf")


@STEPS.register("backup")
class Backup(StepConfig):
    kind: Literal["backup"]
    target: str = Field(description="the lab node to back up (the primary, or `leader`)")
    type: Literal["full", "diff", "incr"] = Field("full", description="pgBackRest backup type")
    shorthand: ClassVar[str | None] = "target"
    needs: ClassVar[Ability[Any] | None] = BACKUP_SOURCE

    def lab_problems(self, lab: LabConfig | None) -> list[tuple[tuple[str, ...], str]]:
        return lab_backup_problems(lab, "backup")

    def describe(self) -> str:
        return f"{self.type} backup of {self.target}"

    def run(self, ctx: StepContext) -> str:
        node = ctx.target_as(self.target, BACKUP_SOURCE)
        repository = node.backups()
        ran, done = repository.backup(
            node.server(), self.type, transfer_lines("backup", ctx.progress)
        )
        ctx.facts["backup"] = {
            "label": done.label,
            "type": self.type,
            "start_ns": ran.start_ns,
            "end_ns": ran.end_ns,
            "stop_ns": repository.stops[done.label],
            "db_bytes": done.db_bytes,
            "repo_bytes": done.repo_bytes,
            "pgbackrest_s": ran.own_s,
        }
        own = f", {ran.own_s:.2f}s by pgBackRest's count" if ran.own_s is not None else ""
        return (
            f"{self.type} backup {done.label}: {done.db_bytes / 1e6:,.0f} MB, "
            f"{done.repo_bytes / 1e6:,.1f} MB stored, {ran.seconds:.2f}s{own}"
        )


@STEPS.register("restore-config")
class RestoreConfig(StepConfig):
    kind: Literal["restore-config"]
    target: str = Field(description="the lab node whose configuration is put back")
    file: Literal["postgresql.conf", "pg_hba.conf"] = "postgresql.conf"
    source: Literal["copy", "backup"] = Field(
        "copy",
        description="copy: the original the lab saved before the incident; backup: the file "
        "as the latest backup holds it",
    )
    shorthand: ClassVar[str | None] = "target"
    needs: ClassVar[Ability[Any] | None] = BACKED

    def lab_problems(self, lab: LabConfig | None) -> list[tuple[tuple[str, ...], str]]:
        return lab_backup_problems(lab, "restore-config") if self.source == "backup" else []

    def describe(self) -> str:
        return f"restore {self.file} of {self.target} from the {self.source}"

    def run(self, ctx: StepContext) -> str:
        node = ctx.target_as(self.target, BACKED)
        datadir = node.server().datadir
        lab_root = datadir.parent
        if self.source == "copy":
            original = config_copy(lab_root, datadir.name, self.file)
            if not original.is_file():
                raise StepError(f"the lab kept no copy of {self.target}'s {self.file}")
            owner = datadir.stat()
            copy_nofollow(original, datadir / self.file, (owner.st_uid, owner.st_gid))
        else:
            self._from_backup(ctx, node, datadir)
        node.stop_server()
        if self.file == "postgresql.conf":
            node.own_configuration()  # the backup's copy may be another node's
        node.start_server()
        ctx.facts["restore_config"] = {
            "node": self.target,
            "file": self.file,
            "source": self.source,
            "up_ns": time.monotonic_ns(),
        }
        return f"{self.file} of {self.target} restored from the {self.source}; server up"

    def _from_backup(self, ctx: StepContext, node: Any, datadir: Path) -> None:
        """Restore the latest backup into a scratch directory in the lab, take the file."""
        scratch = datadir.with_name(f"config-restore-{ctx.serial()}")
        scratch.mkdir(mode=0o700)
        info = datadir.parent.stat()
        chown_nofollow(scratch, info.st_uid, info.st_gid)
        repository = node.backups()
        server = node.server()
        try:
            repository.restore(
                type(server)(scratch, server.port), ["--type=none"], lambda line: None
            )
            kept = datadir / self.file
            owner = datadir.stat()
            copy_nofollow(scratch / self.file, kept, (owner.st_uid, owner.st_gid))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
